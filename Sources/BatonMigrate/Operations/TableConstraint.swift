import BatonCore

/// A constraint as pgroll writes it in `create_table.constraints` and `create_constraint`:
/// unique, check, primary_key, foreign_key or exclude, with every option PostgreSQL has for it.
public struct TableConstraint: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case unique, check, primaryKey = "primary_key", foreignKey = "foreign_key", exclude
    }

    /// `exclude`: `EXCLUDE USING index_method (elements) [WHERE (predicate)]`.
    public struct Exclusion: Sendable, Equatable {
        public var indexMethod: String
        public var elements: String
        public var predicate: String?
    }

    public var name: String
    public var kind: Kind
    public var columns: [String]
    public var check: String?
    public var noInherit: Bool
    public var nullsNotDistinct: Bool
    public var deferral: Deferral
    public var index: IndexParameters
    public var references: ForeignKeyReference?
    public var exclusion: Exclusion?

    /// The fields every constraint may have; the operation reading it allows its own besides.
    static let keys = ["name", "type", "columns", "check", "references", "deferrable", "initially_deferred", "no_inherit", "nulls_not_distinct", "index_parameters", "exclude"]

    init(_ reader: YAMLReader, kinds: [Kind]) throws {
        name = try reader.required("name")
        let type = try reader.required("type")
        guard let kind = Kind(rawValue: type), kinds.contains(kind) else {
            throw reader.error("type", "expected \(kinds.map(\.rawValue).joined(separator: ", ")), got '\(type)'")
        }
        self.kind = kind
        columns = try reader.strings("columns") ?? []
        check = try reader.expression("check")
        noInherit = try reader.bool("no_inherit") ?? false
        nullsNotDistinct = try reader.bool("nulls_not_distinct") ?? false
        deferral = try Deferral(reader)
        index = try reader.child("index_parameters").map(IndexParameters.init) ?? IndexParameters()
        references = try reader.child("references").map(ForeignKeyReference.init(constraint:))
        if let exclude = try reader.child("exclude") {
            try exclude.allowKeys(["index_method", "elements", "predicate"])
            guard let elements = try exclude.expression("elements") else { throw exclude.error("elements", "expected the excluded elements, e.g. \"room WITH =, during WITH &&\"") }
            let method = try exclude.expression("index_method") ?? "btree"
            guard CreateIndex.methods.contains(method) else {
                throw exclude.error("index_method", "expected one of \(CreateIndex.methods.joined(separator: ", ")), got '\(method)'")
            }
            exclusion = Exclusion(indexMethod: method, elements: elements, predicate: try exclude.expression("predicate"))
        }
        // pgroll's schema: which options belong to which kind.
        func refuse(_ key: String, _ present: Bool) throws {
            if present { throw reader.error(key, "a \(kind.rawValue) constraint takes no \(key)") }
        }
        switch kind {
        case .unique, .primaryKey:
            if columns.isEmpty { throw reader.error("columns", "a \(kind.rawValue) constraint needs columns") }
            try refuse("check", check != nil); try refuse("no_inherit", noInherit); try refuse("references", references != nil); try refuse("exclude", exclusion != nil)
            try refuse("nulls_not_distinct", kind == .primaryKey && nullsNotDistinct)
        case .check:
            if check == nil { throw reader.error("check", "a check constraint needs its expression") }
            try refuse("deferrable", deferral.deferrable); try refuse("nulls_not_distinct", nullsNotDistinct)
            try refuse("index_parameters", !index.isEmpty); try refuse("references", references != nil); try refuse("exclude", exclusion != nil)
        case .foreignKey:
            if columns.isEmpty { throw reader.error("columns", "a foreign_key constraint needs columns") }
            guard let references else { throw reader.error("references", "a foreign_key constraint needs references") }
            if references.columns.count != columns.count { throw reader.error("references.columns", "expected \(columns.count) referenced columns, one per column") }
            try refuse("check", check != nil); try refuse("no_inherit", noInherit); try refuse("nulls_not_distinct", nullsNotDistinct)
            try refuse("index_parameters", !index.isEmpty); try refuse("exclude", exclusion != nil)
        case .exclude:
            if exclusion == nil { throw reader.error("exclude", "an exclude constraint needs exclude: {index_method, elements}") }
            try refuse("columns", !columns.isEmpty); try refuse("check", check != nil); try refuse("no_inherit", noInherit)
            try refuse("nulls_not_distinct", nullsNotDistinct); try refuse("references", references != nil)
        }
    }

    /// `CONSTRAINT "name" …` for a table being created, whose columns have their own names.
    func definition(_ planner: MigrationPlanner, field: String) throws -> String {
        let list = columns.map(SQL.ident).joined(separator: ", ")
        let head = "CONSTRAINT \(SQL.ident(name)) "
        switch kind {
        case .unique: return head + "UNIQUE\(nullsNotDistinct ? " NULLS NOT DISTINCT" : "") (\(list))" + index.constraintSQL + deferral.sql
        case .primaryKey: return head + "PRIMARY KEY (\(list))" + index.constraintSQL + deferral.sql
        case .check: return head + "CHECK (\(check ?? "true"))\(noInherit ? " NO INHERIT" : "")"
        case .foreignKey:
            let own = Dictionary(columns.map { ($0, $0) }, uniquingKeysWith: { a, _ in a })
            var references = self.references
            references?.deferral = deferral
            return head + "FOREIGN KEY (\(list)) " + (try references?.clause(planner, field: field + ".references", own: own) ?? "")
        case .exclude:
            let exclusion = exclusion ?? Exclusion(indexMethod: "btree", elements: "", predicate: nil)
            return head + "EXCLUDE USING \(exclusion.indexMethod) (\(exclusion.elements))" + index.constraintSQL
                + (exclusion.predicate.map { " WHERE (\($0))" } ?? "") + deferral.sql
        }
    }
}

/// `index_parameters` of a unique, primary key or exclusion constraint.
public struct IndexParameters: Sendable, Equatable {
    public var includeColumns: [String] = []
    public var storageParameters: String?
    public var tablespace: String?

    init() {}

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["include_columns", "storage_parameters", "tablespace"])
        includeColumns = try reader.strings("include_columns") ?? []
        storageParameters = try reader.expression("storage_parameters")
        tablespace = try reader.expression("tablespace")
    }

    var isEmpty: Bool { includeColumns.isEmpty && storageParameters == nil && tablespace == nil }

    /// In a constraint: `INCLUDE (…) WITH (…) USING INDEX TABLESPACE …`.
    var constraintSQL: String {
        (includeColumns.isEmpty ? "" : " INCLUDE (\(includeColumns.map(SQL.ident).joined(separator: ", ")))")
            + (storageParameters.map { " WITH (\($0))" } ?? "") + (tablespace.map { " USING INDEX TABLESPACE \(SQL.ident($0))" } ?? "")
    }

    /// In CREATE INDEX, with columns as physical names: `INCLUDE (…) [NULLS NOT DISTINCT] WITH (…) TABLESPACE …`.
    func indexSQL(physical: (String) -> String, nullsNotDistinct: Bool) -> String {
        (includeColumns.isEmpty ? "" : " INCLUDE (\(includeColumns.map { SQL.ident(physical($0)) }.joined(separator: ", ")))")
            + (nullsNotDistinct ? " NULLS NOT DISTINCT" : "")
            + (storageParameters.map { " WITH (\($0))" } ?? "") + (tablespace.map { " TABLESPACE \(SQL.ident($0))" } ?? "")
    }
}
