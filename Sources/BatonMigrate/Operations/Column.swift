import BatonCore

/// A column as pgroll describes it in create_table and add_column.
public struct Column: Sendable, Equatable {
    public var name: String
    public var type: String
    public var nullable: Bool
    public var pk: Bool
    public var unique: Bool
    public var defaultValue: String?
    public var check: CheckConstraint?
    public var references: ForeignKeyReference?
    /// `GENERATED ALWAYS AS (expression) STORED`, or an identity.
    public var generated: Generated?
    public var comment: String?

    public enum Generated: Sendable, Equatable {
        case expression(String)
        case identity(always: Bool)
    }

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "type", "nullable", "pk", "unique", "default", "check", "references", "generated", "comment"])
        name = try reader.required("name")
        type = try reader.required("type")
        pk = try reader.bool("pk") ?? false
        // pgroll's default: NOT NULL unless `nullable: true`.
        nullable = try reader.bool("nullable") ?? false
        unique = try reader.bool("unique") ?? false
        defaultValue = try reader.string("default")
        check = try reader.child("check").map(CheckConstraint.init)
        references = try reader.child("references").map(ForeignKeyReference.init)
        comment = try reader.string("comment")
        if let generated = try reader.child("generated") {
            try generated.allowKeys(["expression", "identity"])
            if let expression = try generated.string("expression") {
                self.generated = .expression(expression)
            } else if let identity = try generated.child("identity") {
                try identity.allowKeys(["user_specified_values"])
                self.generated = .identity(always: (try identity.string("user_specified_values") ?? "ALWAYS").uppercased() == "ALWAYS")
            } else {
                throw generated.error(nil, "expected expression or identity")
            }
        }
        if pk && nullable { throw reader.error("nullable", "a primary key column cannot be nullable") }
    }
}

public struct CheckConstraint: Sendable, Equatable {
    public var name: String
    public var constraint: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "constraint", "no_inherit"])
        name = try reader.required("name")
        constraint = try reader.required("constraint")
    }
}

public struct ForeignKeyReference: Sendable, Equatable {
    public static let actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
    public var name: String
    public var table: String
    public var column: String
    public var onDelete: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "table", "column", "on_delete", "on_update", "match_type", "deferrable", "initially_deferred"])
        name = try reader.required("name")
        table = try reader.required("table")
        column = try reader.required("column")
        onDelete = (try reader.string("on_delete") ?? "NO ACTION").uppercased()
        guard Self.actions.contains(onDelete) else {
            throw reader.error("on_delete", "expected one of \(Self.actions.joined(separator: ", ")), got '\(onDelete)'")
        }
    }
}

extension Column {
    /// `"name" type [GENERATED …] [DEFAULT …] [NOT NULL] [UNIQUE] [CHECK …] [REFERENCES …]`, for
    /// a table nobody uses yet (primary keys are declared by the table).
    func definition(_ planner: MigrationPlanner, field: String, named: String? = nil) throws -> String {
        var parts = [SQL.ident(named ?? name), type]
        switch generated {
        case .expression(let expression): parts.append("GENERATED ALWAYS AS (\(expression)) STORED")
        case .identity(let always): parts.append("GENERATED \(always ? "ALWAYS" : "BY DEFAULT") AS IDENTITY")
        case nil: break
        }
        if let defaultValue { parts.append("DEFAULT \(defaultValue)") }
        if !nullable && !pk { parts.append("NOT NULL") }
        if unique { parts.append("UNIQUE") }
        if let check { parts.append("CONSTRAINT \(SQL.ident(check.name)) CHECK (\(check.constraint))") }
        if let references {
            let target = try planner.table(references.table, field: field + ".references.table")
            let column = try planner.column(references.column, of: target, field: field + ".references.column")
            parts.append("CONSTRAINT \(SQL.ident(references.name)) REFERENCES \(planner.qualified(target.physical)) (\(SQL.ident(column.physical))) ON DELETE \(references.onDelete)")
        }
        return parts.joined(separator: " ")
    }
}
