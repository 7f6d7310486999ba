import BatonCore

public struct DropMultiColumnConstraint: Sendable, Equatable {
    public var table: String
    public var name: String
    public var up: [String: String]
    public var down: [String: String]

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "name", "up", "down"])
        table = try reader.required("table")
        name = try reader.required("name")
        up = try reader.expressionMap("up") ?? [:]
        guard let down = try reader.expressionMap("down") else { throw reader.error(nil, "missing 'down'") }
        self.down = down
    }
}

extension DropMultiColumnConstraint {
    /// The new version writes to shadow copies without the constraint; complete drops the
    /// originals, and the constraint with them.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        guard let constraint = planner.catalog.tables[table.physical]?.dependents.first(where: { $0.name == name && $0.kind != .referencedBy && $0.kind != .index }) else {
            throw planner.error("name", "table '\(table.name)' has no constraint '\(name)'")
        }
        for column in Set(up.keys).union(down.keys) where !constraint.columns.contains(column) {
            throw planner.error(up[column] != nil ? "up" : "down", "'\(column)' is not one of the constraint's columns (\(constraint.columns.joined(separator: ", ")))")
        }
        let logical = constraint.columns.map { physical in table.columns.first { $0.physical == physical }?.name ?? physical }
        try planner.shadow(table, logical.map { .init(column: $0, up: up[$0], down: down[$0]) }, field: "name", replacing: name)
    }
}
