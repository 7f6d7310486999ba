import BatonCore

/// pgroll's deprecated single-column form of drop_multicolumn_constraint, still in its schema.
public struct DropConstraint: Sendable, Equatable {
    public var table: String
    public var name: String
    public var up: String?
    public var down: String
    /// Older pgroll files name the constrained column too; it must be the constraint's.
    public var column: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "name", "up", "down", "column"])
        table = try reader.required("table")
        name = try reader.required("name")
        up = try reader.expression("up")
        guard let down = try reader.expression("down") else { throw reader.error("down", "expected the SQL that fills the constrained column when the new version writes") }
        self.down = down
        column = try reader.string("column")
    }
}

extension DropConstraint {
    /// The constraint's one column moves to a shadow copy without it, as in
    /// drop_multicolumn_constraint.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        guard let constraint = planner.catalog.tables[table.physical]?.dependents.first(where: { $0.name == name && [.check, .foreignKey, .unique].contains($0.kind) }) else {
            throw planner.error("name", "table '\(table.name)' has no check, foreign key or unique constraint '\(name)'")
        }
        guard constraint.columns.count == 1, let physical = constraint.columns.first else {
            throw planner.error("name", "'\(name)' covers \(constraint.columns.count) columns; use drop_multicolumn_constraint")
        }
        let logical = table.columns.first { $0.physical == physical }?.name ?? physical
        if let column, column != logical { throw planner.error("column", "'\(name)' is on column '\(logical)', not '\(column)'") }
        try planner.shadow(table, [.init(column: logical, up: up, down: down)], field: "name", replacing: name)
    }
}
