import BatonCore

public struct RenameColumn: Sendable, Equatable {
    public var table: String
    public var from: String
    public var to: String

    init(table: String, from: String, to: String) {
        self.table = table
        self.from = from
        self.to = to
    }

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "from", "to"])
        table = try reader.required("table")
        from = try reader.required("from")
        to = try reader.required("to")
        if from == to { throw reader.error("to", "the new name is the old one") }
    }
}

extension RenameColumn {
    /// Only the new version's view uses the new name until complete renames the column itself.
    func plan(_ planner: inout MigrationPlanner) throws {
        var table = try planner.table(self.table, field: "table")
        let column = try planner.column(from, of: table, field: "from")
        if table.column(to) != nil { throw planner.error("to", "table '\(table.name)' already has a column '\(to)'") }
        try planner.claim(table, column.physical, field: "from")
        table.columns = table.columns.map { $0.name == from ? .init(name: to, physical: $0.physical) : $0 }
        planner.replace(table)
        if !planner.createdTables.contains(table.physical) {
            planner.renames.append(Statement("ALTER TABLE \(planner.qualified(table.physical)) RENAME COLUMN \(SQL.ident(column.physical)) TO \(SQL.ident(to))", lock: Statement.briefExclusive))
        } else {
            planner.atStart(Statement("ALTER TABLE \(planner.qualified(table.physical)) RENAME COLUMN \(SQL.ident(column.physical)) TO \(SQL.ident(to))", lock: "none (new table)"))
            table.columns = table.columns.map { $0.name == to ? .init(name: to, physical: to) : $0 }
            planner.replace(table)
        }
    }
}
