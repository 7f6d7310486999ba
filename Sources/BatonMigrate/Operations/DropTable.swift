import BatonCore

public struct DropTable: Sendable, Equatable {
    public var name: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name"])
        name = try reader.required("name")
    }
}

extension DropTable {
    /// The new version does not see the table; complete drops it.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(name, field: "name")
        planner.change(table)
        planner.version.tables.removeAll { $0.physical == table.physical }
        planner.drops.append(Statement("DROP TABLE IF EXISTS \(planner.qualified(table.physical))", lock: "ACCESS EXCLUSIVE on \(table.physical)"))
    }
}
