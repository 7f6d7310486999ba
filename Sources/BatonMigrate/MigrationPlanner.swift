import BatonCore

/// Works out a migration's plan from the catalog, operation by operation: the physical changes
/// of start, the views of the new version, and what complete and rollback will run. Pure: the
/// same catalog and file always give the same plan, and `baton migrate plan` prints it.
struct MigrationPlanner {
    let migration: Migration
    let catalog: Catalog
    let versionSchema: String
    /// The new version's tables, updated by each operation in turn.
    var version: VersionSchema
    var start: [Statement] = []
    var backfills: [MigrationPlan.Backfill] = []
    /// Contract, in the order it must run: checks proven, then what goes away, then renames.
    var validate: [Statement] = []
    var drops: [Statement] = []
    var renames: [Statement] = []
    var tableRenames: [Statement] = []
    var finals: [Statement] = []
    /// Rollback of each operation, undone in reverse order.
    var rollbacks: [[Statement]] = []
    /// Physical tables made by this migration: the old version never sees them, so they change
    /// in place.
    var createdTables: Set<String> = []
    /// `table.column` already changed by an operation: one change per column per migration.
    var claimed: [String: Int] = [:]
    /// Indexes and constraints rebuilt on shadow columns, with the operation that did it.
    var carried: [String: Int] = [:]
    /// Physical tables this migration changes at complete or keeps in step (`changedTables`).
    var changed: Set<String> = []
    /// Physical tables that migrations still in flight change, with the migration's name.
    let owners: [String: String]
    let rank: Int
    var index = 0
    var kind = ""
    let tag: String

    /// What a new migration builds on: the version schema the old release uses (nil: the base
    /// tables), and the migrations still in flight, oldest first; the newest of them, when there
    /// are any, is the version the new one starts from.
    struct Predecessors {
        var previousSchema: String?
        /// The login role of the previous version (and the migration that made it), dropped at
        /// complete.
        var previousLoginRole: (role: String, migration: String)?
        var inFlight: [MigrationPlan] = []
        var rank = 1
    }

    /// `appRole`: make a login role for the new version (`addLoginRole`).
    static func plan(_ migration: Migration, catalog: Catalog, after predecessors: Predecessors = .init(), appRole: String? = nil) throws -> MigrationPlan {
        var planner = MigrationPlanner(migration: migration, catalog: catalog, predecessors: predecessors)
        // PostgreSQL cuts identifiers at 63 bytes: a longer version schema would be another's.
        guard planner.versionSchema.utf8.count <= 63 else {
            throw BatonError(
                .invalidArgument,
                "\(migration.file): \(migration.versionSchema == nil ? "name" : "version_schema"): '\(migration.versionSchema ?? migration.name)' is too long for schema \(catalog.schema): its version schema \(planner.versionSchema) would exceed PostgreSQL's 63-byte identifier limit (at most \(62 - catalog.schema.utf8.count) bytes here)"
            )
        }
        for (index, operation) in migration.operations.enumerated() {
            planner.index = index
            planner.rollbacks.append([])
            try planner.plan(operation)
        }
        planner.index = migration.operations.count
        planner.rollbacks.append([])
        if let appRole { planner.addLoginRole(app: appRole) }
        if let previous = predecessors.previousLoginRole {
            planner.finals.append(Self.dropLoginRole(previous.role, migration: previous.migration))
        }
        return MigrationPlan(
            name: migration.name, baseSchema: catalog.schema, versionSchema: planner.versionSchema, previousSchema: predecessors.previousSchema,
            start: planner.start, backfills: planner.backfills,
            complete: planner.validate + planner.drops + planner.renames + planner.tableRenames + planner.finals,
            rollback: planner.rollbacks.reversed().flatMap { $0 }, newVersion: planner.version, before: catalog,
            rank: predecessors.rank, changedTables: planner.changed.sorted(), appRole: appRole)
    }

    private init(migration: Migration, catalog: Catalog, predecessors: Predecessors) {
        self.migration = migration
        self.catalog = catalog
        versionSchema = Self.versionSchema(base: catalog.schema, migration: migration.versionSchema ?? migration.name)
        version = predecessors.inFlight.last?.version(after: catalog) ?? VersionSchema(catalog)
        tag = String(Self.fnv1a(migration.name), radix: 16)
        rank = predecessors.rank
        var owners: [String: String] = [:]
        for plan in predecessors.inFlight { for table in plan.changedTables ?? [] { owners[table] = plan.name } }
        self.owners = owners
    }

    static func versionSchema(base: String, migration: String) -> String { "\(base)_\(migration)" }

    private mutating func plan(_ operation: Operation) throws {
        switch operation {
        case .createTable(let op): kind = "create_table"; try op.plan(&self)
        case .addColumn(let op): kind = "add_column"; try op.plan(&self)
        case .alterColumn(let op): kind = "alter_column"; try op.plan(&self)
        case .renameColumn(let op): kind = "rename_column"; try op.plan(&self)
        case .dropColumn(let op): kind = "drop_column"; try op.plan(&self)
        case .renameTable(let op): kind = "rename_table"; try op.plan(&self)
        case .dropTable(let op): kind = "drop_table"; try op.plan(&self)
        case .createIndex(let op): kind = "create_index"; try op.plan(&self)
        case .dropIndex(let op): kind = "drop_index"; try op.plan(&self)
        case .createConstraint(let op): kind = "create_constraint"; try op.plan(&self)
        case .dropMultiColumnConstraint(let op): kind = "drop_multicolumn_constraint"; try op.plan(&self)
        case .renameConstraint(let op): kind = "rename_constraint"; try op.plan(&self)
        case .dropConstraint(let op): kind = "drop_constraint"; try op.plan(&self)
        case .setReplicaIdentity(let op): kind = "set_replica_identity"; try op.plan(&self)
        case .sql(let op): kind = "sql"; try op.plan(&self)
        }
    }

    // MARK: Looking things up

    /// `FILE: operations[2].alter_column.column: no column 'x' in table 'y'`
    func error(_ field: String?, _ message: String) -> BatonError {
        BatonError(.invalidConfiguration, "\(migration.file): operations[\(index)].\(kind)\(field.map { "." + $0 } ?? ""): \(message)")
    }

    func qualified(_ physical: String) -> String { SQL.qualified(catalog.schema, physical) }

    /// A table of the new version as the operations so far left it. A table that a migration
    /// still in flight changes stays out of reach until that one completes: its statements name
    /// columns and tables that complete renames.
    func table(_ name: String, field: String) throws -> VersionSchema.Table {
        guard let table = version.table(name) else {
            throw error(field, "no table '\(name)' in schema '\(catalog.schema)'\(Self.suggestion(name, among: version.tables.map(\.name)))")
        }
        try checkUnowned(table.physical, name: name, field: field)
        return table
    }

    func checkUnowned(_ physical: String, name: String, field: String) throws {
        if let owner = owners[physical] {
            throw error(field, "table '\(name)' is being changed by migration '\(owner)', which is still in flight; complete '\(owner)' before this migration uses the table")
        }
    }

    /// Notes that complete or a trigger changes this table (a table this migration creates
    /// changes in place, unless complete renames it).
    mutating func change(_ table: VersionSchema.Table, evenIfCreated: Bool = false) {
        if evenIfCreated || !createdTables.contains(table.physical) { changed.insert(table.physical) }
    }

    func column(_ name: String, of table: VersionSchema.Table, field: String) throws -> VersionSchema.Column {
        guard let column = table.column(name) else {
            throw error(field, "no column '\(name)' in table '\(table.name)'\(Self.suggestion(name, among: table.columns.map(\.name)))")
        }
        return column
    }

    /// The table's columns as the old version sees them (nil for a table this migration creates).
    func oldColumns(_ table: VersionSchema.Table) -> [VersionSchema.Column] {
        catalog.tables[table.physical]?.columns.map { .init(name: $0.name, physical: $0.name) } ?? []
    }

    mutating func claim(_ table: VersionSchema.Table, _ column: String, field: String) throws {
        if let other = claimed["\(table.physical).\(column)"], other != index {
            throw error(field, "column '\(column)' is already changed by operations[\(other)]; change it once per migration and put the rest in the next one")
        }
        claimed["\(table.physical).\(column)"] = index
        change(table)
    }

    mutating func replace(_ table: VersionSchema.Table) {
        if let at = version.tables.firstIndex(where: { $0.physical == table.physical }) { version.tables[at] = table }
    }

    func shadowName(_ column: String, field: String) throws -> String {
        let name = MigrationPlan.shadowPrefix + column
        guard name.utf8.count <= 63 else { throw error(field, "'\(column)' is too long to get a shadow column (at most \(63 - MigrationPlan.shadowPrefix.count) bytes)") }
        return name
    }

    /// Short names for the helpers this operation adds: `_baton_<tag>_<index>_<what>`.
    func helperName(_ what: String) -> String { "_baton_\(tag)_\(index)_\(what)" }

    // MARK: Emitting

    /// A login role named after the version schema, a member of `app` (so it has the app's
    /// privileges), whose search_path in this database is the version schema and whose
    /// application_name follows Baton's convention. A connection pooler keeps one pool per user,
    /// so the version survives transaction pooling, where a SET search_path would pass from
    /// client to client. The app's SCRAM password is copied when this role may read it. Roles
    /// are the cluster's, so the role carries a comment naming this database and migration: a
    /// role of that name made by anyone else is refused, and only Baton's own is ever dropped.
    mutating func addLoginRole(app: String) {
        let role = SQL.literal(versionSchema)
        let marker = "'baton:' || current_database() || ':' || \(SQL.literal(migration.name))"
        atStart(Statement("""
            DO $baton_role$
            DECLARE
              secret text;
            BEGIN
              IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = \(role)) THEN
                RAISE EXCEPTION 'role % already exists and is not this migration''s login role; drop or rename it, or start without --app-role', \(role);
              END IF;
              EXECUTE format('CREATE ROLE %I LOGIN INHERIT', \(role));
              EXECUTE format('COMMENT ON ROLE %I IS %L', \(role), \(marker));
              EXECUTE format('GRANT %I TO %I', \(SQL.literal(app)), \(role));
              EXECUTE format('ALTER ROLE %I IN DATABASE %I SET search_path = %I', \(role), current_database(), \(role));
              EXECUTE format('ALTER ROLE %I IN DATABASE %I SET application_name = %L', \(role), current_database(), 'baton:' || \(role));
              BEGIN
                SELECT rolpassword INTO secret FROM pg_authid WHERE rolname = \(SQL.literal(app));
                IF secret LIKE 'SCRAM-SHA-256$%' THEN EXECUTE format('ALTER ROLE %I PASSWORD %L', \(role), secret); END IF;
              EXCEPTION WHEN insufficient_privilege THEN NULL;
              END;
            END
            $baton_role$
            """, lock: "none (a new role)"))
        onRollback(Self.dropLoginRole(versionSchema, marker: marker))
    }

    /// Drops a version's login role if Baton made it for this database and `migration`; a role
    /// that still owns something stays, with a warning, rather than failing the phase.
    static func dropLoginRole(_ role: String, migration: String) -> Statement {
        dropLoginRole(role, marker: "'baton:' || current_database() || ':' || \(SQL.literal(migration))")
    }

    private static func dropLoginRole(_ role: String, marker: String) -> Statement {
        Statement("""
            DO $baton_role$
            BEGIN
              IF (SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = \(SQL.literal(role))) = \(marker) THEN
                EXECUTE format('DROP ROLE %I', \(SQL.literal(role)));
              END IF;
            EXCEPTION WHEN dependent_objects_still_exist THEN
              RAISE WARNING 'login role % still owns objects; drop it by hand', \(SQL.literal(role));
            END
            $baton_role$
            """, lock: "none (a version's login role)")
    }

    mutating func atStart(_ statement: Statement) { start.append(statement) }
    mutating func onRollback(_ statement: Statement) { rollbacks[index].append(statement) }

    /// A NOT VALID check, proven at complete, so adding it does not scan the table under lock.
    mutating func addCheck(on table: VersionSchema.Table, name: String, expression: String, noInherit: Bool = false) {
        atStart(Statement("ALTER TABLE \(qualified(table.physical)) ADD CONSTRAINT \(SQL.ident(name)) CHECK (\(expression))\(noInherit ? " NO INHERIT" : "") NOT VALID", lock: Statement.briefExclusive))
        validate.append(Statement("ALTER TABLE \(qualified(table.physical)) VALIDATE CONSTRAINT \(SQL.ident(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)"))
    }

    /// NOT NULL for a column of a live table: a NOT VALID check at start; at complete the check
    /// is validated, SET NOT NULL uses it instead of scanning, and the check is dropped.
    mutating func addNotNull(on table: VersionSchema.Table, column: String, name: String) {
        addCheck(on: table, name: name, expression: "\(SQL.ident(column)) IS NOT NULL")
        validate.append(Statement("ALTER TABLE \(qualified(table.physical)) ALTER COLUMN \(SQL.ident(column)) SET NOT NULL", lock: Statement.briefExclusive + ", no scan: the validated check proves it"))
        validate.append(Statement("ALTER TABLE \(qualified(table.physical)) DROP CONSTRAINT \(SQL.ident(name))", lock: Statement.briefExclusive))
    }

    /// A NOT VALID foreign key on `columns` (physical) of `table`, proven at complete.
    mutating func addForeignKey(on table: VersionSchema.Table, name: String, columns: [String], references: ForeignKeyReference, logical: [String], field: String) throws {
        let clause = try references.clause(self, field: field, own: Dictionary(zip(logical, columns), uniquingKeysWith: { a, _ in a }))
        let target = try self.table(references.table, field: field + ".table").physical
        atStart(Statement(
            "ALTER TABLE \(qualified(table.physical)) ADD CONSTRAINT \(SQL.ident(name)) FOREIGN KEY (\(columns.map(SQL.ident).joined(separator: ", "))) \(clause) NOT VALID",
            lock: "SHARE ROW EXCLUSIVE on \(table.physical) and \(target), brief"))
        validate.append(Statement("ALTER TABLE \(qualified(table.physical)) VALIDATE CONSTRAINT \(SQL.ident(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical), ROW SHARE on \(target)"))
    }

    /// A unique index built CONCURRENTLY at start and turned into a unique (or primary key)
    /// constraint at complete. `options` is what follows the column list (INCLUDE, WITH, …).
    mutating func addUnique(on table: VersionSchema.Table, name: String, columns: [String], options: String = "", primaryKey: Bool = false, deferral: Deferral = Deferral()) {
        atStart(Statement(
            "CREATE UNIQUE INDEX CONCURRENTLY \(SQL.ident(name)) ON \(qualified(table.physical)) (\(columns.map(SQL.ident).joined(separator: ", ")))\(options)",
            lock: "SHARE UPDATE EXCLUSIVE on \(table.physical) (reads and writes go on)", transactional: false))
        onRollback(Statement("DROP INDEX CONCURRENTLY IF EXISTS \(qualified(name))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)", transactional: false))
        finals.append(Statement(
            "ALTER TABLE \(qualified(table.physical)) ADD CONSTRAINT \(SQL.ident(name)) \(primaryKey ? "PRIMARY KEY" : "UNIQUE") USING INDEX \(SQL.ident(name))\(deferral.sql)",
            lock: Statement.briefExclusive))
    }

    /// A row trigger that keeps the old and new version's columns in step. `up` fills the new
    /// version's columns when the old version writes; `down` fills the old version's columns when
    /// the new version writes. Expressions name columns as that version does: each column is a
    /// variable of the trigger function.
    mutating func addTrigger(on table: VersionSchema.Table, up: [(physical: String, expression: String)], down: [(physical: String, expression: String)]) throws {
        guard !up.isEmpty || !down.isEmpty else { return }
        let old = oldColumns(table)
        let new = table.columns
        func variables(_ first: [VersionSchema.Column], _ second: [VersionSchema.Column]) -> String {
            var seen = Set<String>()
            return (first + second).filter { seen.insert($0.name).inserted }.map {
                "      \(SQL.ident($0.name)) \(qualified(table.physical)).\(SQL.ident($0.physical))%TYPE := NEW.\(SQL.ident($0.physical));"
            }.joined(separator: "\n")
        }
        func block(_ assignments: [(physical: String, expression: String)], _ names: String) -> String {
            "    DECLARE\n\(names)\n    BEGIN\n"
                + assignments.map { "      NEW.\(SQL.ident($0.physical)) := (\($0.expression));" }.joined(separator: "\n") + "\n    END;"
        }
        let quote = "$baton_trigger$"
        for expression in (up + down).map(\.expression) where expression.contains(quote) {
            throw error(nil, "an up/down expression may not contain \(quote)")
        }
        var branches: [String] = []
        if !down.isEmpty { branches.append("  IF _baton_is_new THEN\n\(block(down, variables(new, old)))\n  END IF;") }
        if !up.isEmpty { branches.append("  IF NOT _baton_is_new THEN\n\(block(up, variables(old, new)))\n  END IF;") }
        let function = SQL.qualified("baton", helperName("trigger"))
        let trigger = SQL.ident(helperName("trigger"))
        // A session writes through the new version when its search_path starts with this
        // version schema or a later one (a migration started on top of this one); everything
        // else (older versions, the base tables, the backfill) is the old side.
        atStart(Statement("""
            CREATE FUNCTION \(function)() RETURNS trigger LANGUAGE plpgsql AS \(quote)
            DECLARE
              _baton_is_new boolean := baton.version_rank(trim(both ' "' from split_part(current_setting('search_path'), ',', 1))) >= \(rank);
            BEGIN
            \(branches.joined(separator: "\n"))
              RETURN NEW;
            END
            \(quote)
            """, lock: "none"))
        // The backfill computes `up` in its own UPDATE and says so with baton.backfill, which
        // spares it a PL/pgSQL call per row.
        atStart(Statement(
            "CREATE TRIGGER \(trigger) BEFORE INSERT OR UPDATE ON \(qualified(table.physical)) FOR EACH ROW WHEN (current_setting('baton.backfill', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION \(function)()",
            lock: "SHARE ROW EXCLUSIVE on \(table.physical), brief"))
        let drop = [
            Statement("DROP TRIGGER IF EXISTS \(trigger) ON \(qualified(table.physical))", lock: Statement.briefExclusive),
            Statement("DROP FUNCTION IF EXISTS \(function)()", lock: "none"),
        ]
        drops.insert(contentsOf: drop, at: 0)
        rollbacks[index].insert(contentsOf: drop, at: 0)
        if !up.isEmpty { addBackfill(table, up: up, oldColumns: old) }
    }

    /// Existing rows get `up` in batches. The batch UPDATE sets the new columns itself when every
    /// `up` of the table reads only columns that exist before the migration (names the new
    /// version gave them are rewritten); otherwise it sets a column to itself so the triggers run.
    mutating func addBackfill(_ table: VersionSchema.Table, up: [(physical: String, expression: String)], oldColumns: [VersionSchema.Column]) {
        guard let info = catalog.tables[table.physical] else { return }
        let newOnly = table.columns.filter { column in !oldColumns.contains { $0.name == column.name } }
        let existing = Dictionary(newOnly.filter { info.column($0.physical) != nil }.map { ($0.name, $0.physical) }, uniquingKeysWith: { a, _ in a })
        let computed = Dictionary(newOnly.filter { info.column($0.physical) == nil }.map { ($0.name, $0.physical) }, uniquingKeysWith: { a, _ in a })
        let assignments = up.map { MigrationPlan.Backfill.Assignment(column: $0.physical, expression: SQL.renamingIdentifiers(in: $0.expression, existing)) }
        let inline = up.allSatisfy { SQL.renamingIdentifiers(in: $0.expression, computed) == $0.expression }
        if let at = backfills.firstIndex(where: { $0.table == table.physical }) {
            backfills[at].assignments += assignments
            backfills[at].inline = backfills[at].inline && inline
            return
        }
        backfills.append(.init(table: table.physical, touch: info.columns[0].name, assignments: assignments, inline: inline))
    }

    /// A constraint or index on these columns that a shadow copy would not carry over.
    func dependents(of table: VersionSchema.Table, columns: [String], except: String? = nil) -> [Catalog.Dependent] {
        (catalog.tables[table.physical]?.dependents ?? []).filter { $0.name != except && !Set($0.columns).isDisjoint(with: columns) }
    }

    static func suggestion(_ name: String, among names: [String]) -> String {
        let scored = names.map { ($0, distance(Array($0.lowercased()), Array(name.lowercased()))) }.filter { $0.1 <= max(1, name.count / 3) }
        return scored.min { $0.1 < $1.1 }.map { " (did you mean '\($0.0)'?)" } ?? ""
    }

    /// Levenshtein distance, for "did you mean".
    private static func distance(_ a: [Character], _ b: [Character]) -> Int {
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    private static func fnv1a(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}
