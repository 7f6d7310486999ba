import BatonCore

public struct DropColumn: Sendable, Equatable {
    public var table: String
    public var column: String
    /// Fills the column for rows the new version writes while the old one still reads it.
    public var down: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "column", "down"])
        table = try reader.required("table")
        column = try reader.required("column")
        down = try reader.expression("down")
    }
}

extension DropColumn {
    /// The new version's view leaves the column out; `down` fills it for the old version when the
    /// new one writes a row; complete drops it.
    func plan(_ planner: inout MigrationPlanner) throws {
        var table = try planner.table(self.table, field: "table")
        let dropped = try planner.column(column, of: table, field: "column")
        try planner.claim(table, dropped.physical, field: "column")
        table.columns.removeAll { $0.name == column }
        planner.replace(table)
        if planner.createdTables.contains(table.physical) {
            planner.atStart(Statement("ALTER TABLE \(planner.qualified(table.physical)) DROP COLUMN \(SQL.ident(dropped.physical))", lock: "none (new table)"))
            return
        }
        if let down { try planner.addTrigger(on: table, up: [], down: [(dropped.physical, down)]) }
        planner.drops.append(Statement("ALTER TABLE \(planner.qualified(table.physical)) DROP COLUMN IF EXISTS \(SQL.ident(dropped.physical))", lock: Statement.briefExclusive))
    }
}
