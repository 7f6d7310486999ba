import BatonCore

public struct RenameTable: Sendable, Equatable {
    public var from: String
    public var to: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["from", "to"])
        from = try reader.required("from")
        to = try reader.required("to")
        if from == to { throw reader.error("to", "the new name is the old one") }
    }
}

extension RenameTable {
    /// The new version's view has the new name; complete renames the table, last.
    func plan(_ planner: inout MigrationPlanner) throws {
        var table = try planner.table(from, field: "from")
        if planner.version.table(to) != nil || (planner.catalog.tables[to] != nil && to != table.physical) {
            throw planner.error("to", "table '\(to)' already exists")
        }
        planner.change(table, evenIfCreated: true)
        table.name = to
        planner.replace(table)
        planner.tableRenames.append(Statement("ALTER TABLE \(planner.qualified(table.physical)) RENAME TO \(SQL.ident(to))", lock: Statement.briefExclusive))
    }
}
