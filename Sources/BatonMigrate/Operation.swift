import BatonCore

/// One step of a migration. Each kind lives in its own file under Operations/.
public enum Operation: Sendable, Equatable {
    case createTable(CreateTable)
    case addColumn(AddColumn)
    case alterColumn(AlterColumn)
    case renameColumn(RenameColumn)
    case dropColumn(DropColumn)
    case renameTable(RenameTable)
    case dropTable(DropTable)
    case createIndex(CreateIndex)
    case dropIndex(DropIndex)
    case createConstraint(CreateConstraint)
    case dropMultiColumnConstraint(DropMultiColumnConstraint)
    case renameConstraint(RenameConstraint)
    case dropConstraint(DropConstraint)
    case setReplicaIdentity(SetReplicaIdentity)
    case sql(RawSQL)

    static let kinds = [
        "create_table", "add_column", "alter_column", "rename_column", "drop_column", "rename_table", "drop_table",
        "create_index", "drop_index", "create_constraint", "drop_multicolumn_constraint", "rename_constraint", "drop_constraint", "set_replica_identity", "sql",
    ]

    /// `{"KIND": {...}}` with exactly one known KIND.
    static func parse(_ reader: YAMLReader) throws -> Operation {
        let keys = reader.keys
        guard keys.count == 1, let kind = keys.first else {
            throw reader.error(nil, "expected one operation such as {\"add_column\": {...}}, got \(keys.isEmpty ? "none" : keys.joined(separator: ", "))")
        }
        guard kinds.contains(kind) else {
            throw reader.error(kind, "unknown operation; expected one of \(kinds.joined(separator: ", "))")
        }
        guard let body = try reader.child(kind) else { throw reader.error(kind, "expected a mapping") }
        switch kind {
        case "create_table": return .createTable(try CreateTable(body))
        case "add_column": return .addColumn(try AddColumn(body))
        case "alter_column": return .alterColumn(try AlterColumn(body))
        case "rename_column": return .renameColumn(try RenameColumn(body))
        case "drop_column": return .dropColumn(try DropColumn(body))
        case "rename_table": return .renameTable(try RenameTable(body))
        case "drop_table": return .dropTable(try DropTable(body))
        case "create_index": return .createIndex(try CreateIndex(body))
        case "drop_index": return .dropIndex(try DropIndex(body))
        case "create_constraint": return .createConstraint(try CreateConstraint(body))
        case "drop_multicolumn_constraint": return .dropMultiColumnConstraint(try DropMultiColumnConstraint(body))
        case "rename_constraint": return .renameConstraint(try RenameConstraint(body))
        case "drop_constraint": return .dropConstraint(try DropConstraint(body))
        case "set_replica_identity": return .setReplicaIdentity(try SetReplicaIdentity(body))
        default: return .sql(try RawSQL(body))
        }
    }
}
