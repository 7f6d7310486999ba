import BatonCore

public struct CreateIndex: Sendable, Equatable {
    public static let methods = ["btree", "hash", "gist", "spgist", "gin", "brin"]

    /// One indexed column and how it is ordered and compared.
    public struct Field: Sendable, Equatable {
        public var column: String
        public var collate: String?
        public var sort: String?
        public var nulls: String?
        /// `opclass` or `opclass (param = value, …)`.
        public var opclass: String?

        init(column: String) { self.column = column }

        init(column: String, _ reader: YAMLReader) throws {
            self.column = column
            collate = try reader.expression("collate")
            sort = try reader.expression("sort")?.uppercased()
            if let sort, !["ASC", "DESC"].contains(sort) { throw reader.error("sort", "expected ASC or DESC, got '\(sort)'") }
            nulls = try reader.expression("nulls")?.uppercased()
            if let nulls, !["FIRST", "LAST"].contains(nulls) { throw reader.error("nulls", "expected FIRST or LAST, got '\(nulls)'") }
            if let opclass = try reader.child("opclass") {
                try opclass.allowKeys(["name", "params"])
                let name = try opclass.required("name")
                // A list of "param=value" (pgroll today) or a map (pgroll 0.10 to 0.15).
                let params = try (try? opclass.strings("params")) ?? (try opclass.stringMap("params") ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
                self.opclass = SQL.ident(name) + (params.isEmpty ? "" : " (\(params.joined(separator: ", ")))")
            }
        }

        /// `"physical" [COLLATE "c"] [opclass] [ASC|DESC] [NULLS FIRST|LAST]`
        func sql(physical: String) -> String {
            [SQL.ident(physical), collate.map { "COLLATE \(SQL.ident($0))" }, opclass, sort, nulls.map { "NULLS \($0)" }].compactMap { $0 }.joined(separator: " ")
        }
    }

    public var name: String
    public var table: String
    public var fields: [Field]
    public var method: String
    public var unique: Bool
    public var predicate: String?
    /// `WITH (…)`, e.g. `fillfactor = 70`.
    public var storageParameters: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "table", "columns", "method", "unique", "predicate", "storage_parameters"])
        name = try reader.required("name")
        table = try reader.required("table")
        // pgroll has written columns as a list of names, a map of name → options, and a list of
        // {column: name, …options}; all three are read.
        let fieldKeys = ["collate", "sort", "nulls", "opclass"]
        if !reader.has("columns") {
            throw reader.error(nil, "missing 'columns'")
        } else if let map = try? reader.child("columns") {
            fields = try map.keys.map { column in
                guard let options = try map.child(column) else { return Field(column: column) }
                try options.allowKeys(fieldKeys)
                return try Field(column: column, options)
            }
        } else if let names = try? reader.strings("columns") {
            fields = names.map(Field.init(column:))
        } else {
            fields = try (try reader.list("columns") ?? []).map { item in
                try item.allowKeys(["column"] + fieldKeys)
                return try Field(column: try item.required("column"), item)
            }
        }
        if fields.isEmpty { throw reader.error("columns", "expected at least one column") }
        method = try reader.expression("method") ?? "btree"
        guard Self.methods.contains(method) else {
            throw reader.error("method", "expected one of \(Self.methods.joined(separator: ", ")), got '\(method)'")
        }
        unique = try reader.bool("unique") ?? false
        predicate = try reader.expression("predicate")
        storageParameters = try reader.expression("storage_parameters")
    }
}

extension CreateIndex {
    /// Built CONCURRENTLY at start, so writes go on while it builds.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        if planner.catalog.indexNames.contains(name) { throw planner.error("name", "an index or constraint '\(name)' already exists") }
        var physical: [String: String] = [:]
        for column in table.columns { physical[column.name] = column.physical }
        let list = try fields.map { $0.sql(physical: try planner.column($0.column, of: table, field: "columns").physical) }.joined(separator: ", ")
        let with = storageParameters.map { " WITH (\($0))" } ?? ""
        let predicate = self.predicate.map { " WHERE \(SQL.renamingIdentifiers(in: $0, physical.filter { $0.key != $0.value }))" } ?? ""
        planner.atStart(Statement(
            "CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY \(SQL.ident(name)) ON \(planner.qualified(table.physical)) USING \(method) (\(list))\(with)\(predicate)",
            lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)", transactional: false))
        planner.onRollback(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(planner.qualified(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)", transactional: false))
    }
}
