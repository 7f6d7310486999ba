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
        /// `sequenceOptions`: what goes in `AS IDENTITY (…)`, e.g. `START WITH 100`.
        case identity(always: Bool, sequenceOptions: String?)
    }

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "type", "nullable", "pk", "unique", "default", "check", "references", "generated", "comment"])
        name = try reader.required("name")
        type = try reader.required("type")
        pk = try reader.bool("pk") ?? false
        // pgroll's default: NOT NULL unless `nullable: true`.
        nullable = try reader.bool("nullable") ?? false
        unique = try reader.bool("unique") ?? false
        defaultValue = try reader.expression("default")
        check = try reader.child("check").map(CheckConstraint.init)
        references = try reader.child("references").map(ForeignKeyReference.init(column:))
        comment = try reader.string("comment")
        if let generated = try reader.child("generated") {
            try generated.allowKeys(["expression", "identity"])
            if generated.has("expression") && generated.has("identity") { throw generated.error(nil, "give expression or identity, not both") }
            if let expression = try generated.expression("expression") {
                self.generated = .expression(expression)
            } else if let identity = try generated.child("identity") {
                try identity.allowKeys(["user_specified_values", "sequence_options"])
                let values = (try identity.string("user_specified_values") ?? "ALWAYS").uppercased()
                guard ["ALWAYS", "BY DEFAULT"].contains(values) else {
                    throw identity.error("user_specified_values", "expected ALWAYS or BY DEFAULT, got '\(values)'")
                }
                self.generated = .identity(always: values == "ALWAYS", sequenceOptions: try identity.expression("sequence_options"))
            } else {
                throw generated.error(nil, "expected expression or identity")
            }
        }
        if pk && nullable { throw reader.error("nullable", "a primary key column cannot be nullable") }
    }
}

extension Column {
    /// `GENERATED …` for this column, if it is generated.
    var generatedSQL: String? {
        switch generated {
        case .expression(let expression): "GENERATED ALWAYS AS (\(expression)) STORED"
        case .identity(let always, let options): "GENERATED \(always ? "ALWAYS" : "BY DEFAULT") AS IDENTITY\(options.map { " (\($0))" } ?? "")"
        case nil: nil
        }
    }

    /// `"name" type [GENERATED …] [DEFAULT …] [NOT NULL] [UNIQUE] [CHECK …] [REFERENCES …]`, for
    /// a table nobody uses yet. A create_table declares its primary key itself; a column added
    /// to such a table says `PRIMARY KEY` here (`inlinePrimaryKey`).
    func definition(_ planner: MigrationPlanner, field: String, inlinePrimaryKey: Bool = false) throws -> String {
        var parts = [SQL.ident(name), type]
        if let generatedSQL { parts.append(generatedSQL) }
        if let defaultValue { parts.append("DEFAULT \(defaultValue)") }
        if !nullable && !pk { parts.append("NOT NULL") }
        if pk && inlinePrimaryKey { parts.append("PRIMARY KEY") }
        if unique { parts.append("UNIQUE") }
        if let check { parts.append("CONSTRAINT \(SQL.ident(check.name)) CHECK (\(check.constraint))\(check.noInherit ? " NO INHERIT" : "")") }
        if let references {
            parts.append("CONSTRAINT \(SQL.ident(references.name ?? "")) " + (try references.clause(planner, field: field + ".references", own: [:])))
        }
        return parts.joined(separator: " ")
    }
}
