import BatonCore

public struct CreateIndex: Sendable, Equatable {
    public static let methods = ["btree", "hash", "gist", "spgist", "gin", "brin"]
    public var name: String
    public var table: String
    public var columns: [String]
    public var method: String
    public var unique: Bool
    public var predicate: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "table", "columns", "method", "unique", "predicate", "storage_parameters"])
        name = try reader.required("name")
        table = try reader.required("table")
        // pgroll has written columns as a list of names, a map of name → options, and a list of
        // {column: name}; all three are read.
        if !reader.has("columns") {
            throw reader.error(nil, "missing 'columns'")
        } else if let map = try? reader.child("columns") {
            columns = map.keys
        } else if let names = try? reader.strings("columns") {
            columns = names
        } else {
            columns = try (try reader.list("columns") ?? []).map { item in
                try item.allowKeys(["column", "collate", "sort", "nulls", "opclass"])
                return try item.required("column")
            }
        }
        if columns.isEmpty { throw reader.error("columns", "expected at least one column") }
        method = try reader.string("method") ?? "btree"
        guard Self.methods.contains(method) else {
            throw reader.error("method", "expected one of \(Self.methods.joined(separator: ", ")), got '\(method)'")
        }
        unique = try reader.bool("unique") ?? false
        predicate = try reader.string("predicate")
    }
}

extension CreateIndex {
    /// Built CONCURRENTLY at start, so writes go on while it builds.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        if planner.catalog.indexNames.contains(name) { throw planner.error("name", "an index or constraint '\(name)' already exists") }
        var physical: [String: String] = [:]
        for column in table.columns { physical[column.name] = column.physical }
        let list = try columns.map { SQL.ident(try planner.column($0, of: table, field: "columns").physical) }.joined(separator: ", ")
        let predicate = self.predicate.map { " WHERE \(SQL.renamingIdentifiers(in: $0, physical.filter { $0.key != $0.value }))" } ?? ""
        planner.atStart(Statement(
            "CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY \(SQL.ident(name)) ON \(planner.qualified(table.physical)) USING \(method) (\(list))\(predicate)",
            lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)", transactional: false))
        planner.onRollback(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(planner.qualified(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)", transactional: false))
    }
}
