/// Shadow columns: how a column changes while the old version still uses it. The new version
/// gets a copy (`_baton_new_<name>`) with the new type, nullability, default and constraints;
/// a trigger keeps both in step; the backfill fills the copy for existing rows; complete drops
/// the original and gives the copy its name.
extension MigrationPlanner {
    struct ShadowChange {
        var column: String
        var type: String?
        var nullable: Bool?
        /// `.some(nil)` drops the default.
        var defaultValue: String??
        var up: String?
        var down: String?
        /// The name the column has in the new version (and after complete), when it changes.
        var rename: String? = nil
    }

    /// Returns logical name → shadow column.
    @discardableResult
    mutating func shadow(_ table: VersionSchema.Table, _ changes: [ShadowChange], field: String, replacing constraint: String? = nil) throws -> [String: String] {
        guard let info = catalog.tables[table.physical] else {
            throw error(field, "table '\(table.name)' is created by this migration; describe the column in its create_table")
        }
        var updated = table
        var shadows: [String: String] = [:]
        var up: [(physical: String, expression: String)] = []
        var down: [(physical: String, expression: String)] = []
        for (number, change) in changes.enumerated() {
            let column = try self.column(change.column, of: table, field: field)
            try claim(table, column.physical, field: field)
            guard let current = info.column(column.physical) else { throw error(field, "column '\(change.column)' was not in the table when the migration began") }
            let lost = dependents(of: table, columns: [column.physical], except: constraint)
            if let first = lost.first {
                throw error(field, "column '\(change.column)' is part of \(first.kind.rawValue) '\(first.name)', which its shadow copy would not carry over; drop it in an earlier migration and create it again afterwards")
            }
            let shadow = try shadowName(column.physical, field: field)
            let type = change.type ?? current.type
            let defaultValue = change.defaultValue ?? current.defaultValue
            atStart(Statement(
                "ALTER TABLE \(qualified(table.physical)) ADD COLUMN \(SQL.ident(shadow)) \(type)\(defaultValue.map { " DEFAULT \($0)" } ?? "")",
                lock: Statement.briefExclusive))
            if !(change.nullable ?? current.nullable) {
                addNotNull(on: table, column: shadow, name: helperName("not_null_\(number)"))
            }
            drops.append(Statement("ALTER TABLE \(qualified(table.physical)) DROP COLUMN \(SQL.ident(column.physical))", lock: Statement.briefExclusive))
            let finalName = change.rename ?? column.physical
            renames.append(Statement("ALTER TABLE \(qualified(table.physical)) RENAME COLUMN \(SQL.ident(shadow)) TO \(SQL.ident(finalName))", lock: Statement.briefExclusive))
            onRollback(Statement("ALTER TABLE \(qualified(table.physical)) DROP COLUMN IF EXISTS \(SQL.ident(shadow))", lock: Statement.briefExclusive))
            up.append((shadow, change.up ?? SQL.ident(change.column)))
            down.append((column.physical, change.down ?? SQL.ident(change.rename ?? change.column)))
            shadows[change.column] = shadow
            updated.columns = updated.columns.map { $0.name == change.column ? .init(name: change.rename ?? $0.name, physical: shadow) : $0 }
        }
        replace(updated)
        try addTrigger(on: updated, up: up, down: down)
        return shadows
    }
}
