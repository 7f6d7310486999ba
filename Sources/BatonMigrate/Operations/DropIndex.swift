import BatonCore

public struct DropIndex: Sendable, Equatable {
    public var name: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name"])
        name = try reader.required("name")
    }
}

extension DropIndex {
    /// The old version may still rely on it, so it goes at complete, CONCURRENTLY.
    func plan(_ planner: inout MigrationPlanner) throws {
        guard let table = planner.catalog.tables.values.first(where: { $0.dependents.contains { $0.name == name && $0.kind == .index } }) else {
            throw planner.error("name", "no index '\(name)' in schema '\(planner.catalog.schema)' (a constraint's index goes with the constraint)")
        }
        try planner.checkUnowned(table.name, name: table.name, field: "name")
        planner.changed.insert(table.name)
        planner.drops.insert(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(planner.qualified(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.name)", transactional: false), at: 0)
    }
}
