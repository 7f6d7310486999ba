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
            let kept = dependents(of: table, columns: [column.physical], except: constraint)
            if let first = kept.first(where: { [.primaryKey, .exclusion, .referencedBy].contains($0.kind) }) {
                let what = first.kind == .referencedBy ? "referenced by foreign key '\(first.name)'" : "part of \(first.kind == .primaryKey ? "primary key" : "exclusion constraint") '\(first.name)'"
                throw error(field, "column '\(change.column)' is \(what), which cannot move to a shadow column; change it in its own steps (sql operations) instead")
            }
            let shadow = try shadowName(column.physical, field: field)
            let type = change.type ?? current.type
            let defaultValue = change.defaultValue ?? current.defaultValue
            // The default is set after the column exists: it then applies to new rows only, and a
            // volatile one (a serial's nextval) neither rewrites the table nor draws values for
            // rows the backfill fills anyway.
            atStart(Statement("ALTER TABLE \(qualified(table.physical)) ADD COLUMN \(SQL.ident(shadow)) \(type)", lock: Statement.briefExclusive))
            if let defaultValue {
                atStart(Statement("ALTER TABLE \(qualified(table.physical)) ALTER COLUMN \(SQL.ident(shadow)) SET DEFAULT \(defaultValue)", lock: Statement.briefExclusive))
            }
            // The comment goes with the column (an alter_column comment replaces it after this).
            if let comment = current.comment {
                atStart(Statement("COMMENT ON COLUMN \(qualified(table.physical)).\(SQL.ident(shadow)) IS \(SQL.literal(comment))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)"))
            }
            if !(change.nullable ?? current.nullable) {
                addNotNull(on: table, column: shadow, name: helperName("not_null_\(number)"))
            }
            // A serial's sequence belongs to the original column and would go with it; the shadow,
            // whose default draws from it, takes it over first.
            if defaultValue?.contains("nextval(") == true {
                let owned = "pg_get_serial_sequence(\(SQL.literal(qualified(table.physical))), \(SQL.literal(column.physical)))"
                validate.append(Statement(
                    "DO $baton_sequence$ BEGIN IF \(owned) IS NOT NULL THEN EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', \(owned), \(SQL.literal(qualified(table.physical))), \(SQL.literal(shadow))); END IF; END $baton_sequence$",
                    lock: "ACCESS EXCLUSIVE on the sequence, brief"))
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
        let physical = Dictionary(uniqueKeysWithValues: changes.compactMap { change in
            table.column(change.column).flatMap { column in shadows[change.column].map { (column.physical, $0) } }
        })
        try carryOver(dependents(of: table, columns: Array(physical.keys), except: constraint), of: updated, to: physical, field: field)
        return shadows
    }

    /// The indexes and constraints of the original columns, built again on their shadows (an
    /// index CONCURRENTLY, a constraint NOT VALID) under a temporary name, which becomes the old
    /// name at complete, once the originals are dropped with their columns.
    private mutating func carryOver(_ kept: [Catalog.Dependent], of table: VersionSchema.Table, to shadows: [String: String], field: String) throws {
        let target = qualified(table.physical)
        for (number, dependent) in kept.enumerated() {
            // Rebuilt once per migration: a second copy would claim the same name at complete.
            if let other = carried[dependent.name], other != index {
                throw error(field, "'\(dependent.name)' covers columns that operations[\(other)] also moves to shadow columns; change them in one operation or in separate migrations")
            }
            carried[dependent.name] = index
            let temporary = helperName("keep_\(number)")
            let definition = dependent.definition ?? ""
            switch dependent.kind {
            case .index:
                guard let using = definition.range(of: " USING ") else { continue }
                let unique = definition.hasPrefix("CREATE UNIQUE INDEX")
                let tail = SQL.renamingIdentifiers(in: String(definition[using.upperBound...]), shadows)
                atStart(Statement(
                    "CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY \(SQL.ident(temporary)) ON \(target) USING \(tail)",
                    lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)", transactional: false))
                onRollback(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(qualified(temporary))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)", transactional: false))
                finals.append(Statement("ALTER INDEX \(qualified(temporary)) RENAME TO \(SQL.ident(dependent.name))", lock: Statement.briefExclusive))
            case .unique:
                let columns = dependent.columns.map { shadows[$0] ?? $0 }
                atStart(Statement(
                    "CREATE UNIQUE INDEX CONCURRENTLY \(SQL.ident(temporary)) ON \(target) (\(columns.map(SQL.ident).joined(separator: ", ")))",
                    lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)", transactional: false))
                onRollback(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(qualified(temporary))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)", transactional: false))
                finals.append(Statement("ALTER TABLE \(target) ADD CONSTRAINT \(SQL.ident(dependent.name)) UNIQUE USING INDEX \(SQL.ident(temporary))", lock: Statement.briefExclusive))
            case .check, .foreignKey:
                var body = definition.hasSuffix(" NOT VALID") ? String(definition.dropLast(" NOT VALID".count)) : definition
                if dependent.kind == .foreignKey, let references = body.range(of: " REFERENCES ") {
                    body = SQL.renamingIdentifiers(in: String(body[..<references.lowerBound]), shadows) + String(body[references.lowerBound...])
                } else {
                    body = SQL.renamingIdentifiers(in: body, shadows)
                }
                atStart(Statement("ALTER TABLE \(target) ADD CONSTRAINT \(SQL.ident(temporary)) \(body) NOT VALID", lock: Statement.briefExclusive))
                validate.append(Statement("ALTER TABLE \(target) VALIDATE CONSTRAINT \(SQL.ident(temporary))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)"))
                finals.append(Statement("ALTER TABLE \(target) RENAME CONSTRAINT \(SQL.ident(temporary)) TO \(SQL.ident(dependent.name))", lock: Statement.briefExclusive))
            case .primaryKey, .exclusion, .referencedBy:
                continue
            }
        }
    }
}
