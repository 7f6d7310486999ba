import BatonCore

public struct RenameConstraint: Sendable, Equatable {
    public var table: String
    public var from: String
    public var to: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "from", "to"])
        table = try reader.required("table")
        from = try reader.required("from")
        to = try reader.required("to")
    }
}

extension RenameConstraint {
    /// Constraint names are not part of any view, so the rename waits for complete.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        guard let dependents = planner.catalog.tables[table.physical]?.dependents, dependents.contains(where: { $0.name == from && $0.kind != .referencedBy && $0.kind != .index }) else {
            throw planner.error("from", "table '\(table.name)' has no constraint '\(from)'")
        }
        if dependents.contains(where: { $0.name == to }) { throw planner.error("to", "table '\(table.name)' already has a constraint '\(to)'") }
        planner.change(table)
        planner.finals.append(Statement("ALTER TABLE \(planner.qualified(table.physical)) RENAME CONSTRAINT \(SQL.ident(from)) TO \(SQL.ident(to))", lock: Statement.briefExclusive))
    }
}
