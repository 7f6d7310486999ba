import BatonCore

/// `ALTER TABLE … REPLICA IDENTITY …`: what logical replication sends for updated and deleted
/// rows. Both versions share it, so it changes at start; unlike pgroll, rollback restores the
/// identity the table had.
public struct SetReplicaIdentity: Sendable, Equatable {
    public var table: String
    /// FULL, DEFAULT, NOTHING or INDEX.
    public var type: String
    public var index: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "identity"])
        table = try reader.required("table")
        guard let identity = try reader.child("identity") else { throw reader.error("identity", "expected {type: full|default|nothing|index, index: NAME}") }
        try identity.allowKeys(["type", "index"])
        type = try identity.required("type").uppercased()
        guard ["FULL", "DEFAULT", "NOTHING", "INDEX"].contains(type) else {
            throw identity.error("type", "expected full, default, nothing or index, got '\(type.lowercased())'")
        }
        index = try identity.expression("index")
        if type == "INDEX" && index == nil { throw identity.error("index", "type index needs the index's name") }
    }
}

extension SetReplicaIdentity {
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        planner.change(table)
        var identity = type
        if type == "INDEX", let index {
            let indexes = planner.catalog.tables[table.physical]?.dependents.filter { [.index, .unique, .primaryKey].contains($0.kind) } ?? []
            guard indexes.contains(where: { $0.name == index }) else {
                throw planner.error("identity.index", "table '\(table.name)' has no index '\(index)'")
            }
            identity = "USING INDEX \(SQL.ident(index))"
        }
        let target = "ALTER TABLE \(planner.qualified(table.physical)) REPLICA IDENTITY"
        planner.atStart(Statement("\(target) \(identity)", lock: Statement.briefExclusive))
        let previous = planner.catalog.tables[table.physical]?.replicaIdentity ?? "DEFAULT"
        planner.onRollback(Statement("\(target) \(previous)", lock: Statement.briefExclusive))
    }
}
