/// Everything a migration will do, worked out from the catalog before anything runs and stored
/// with the migration, so `complete` and `rollback` run exactly what `start` prepared.
public struct MigrationPlan: Sendable, Codable, Equatable {
    public struct Backfill: Sendable, Codable, Equatable {
        /// Physical table.
        public var table: String
        /// Set only in plans stored by a Baton that batched by key: such a backfill's saved
        /// position is a key, not a page, so it cannot resume here.
        public var key: [String]?
        /// A column set to itself so every row's triggers run (when not `inline`).
        public var touch: String
        /// The new columns and their `up`, set by the batch UPDATE itself when `inline`.
        public var assignments: [Assignment]
        public var inline: Bool

        public struct Assignment: Sendable, Codable, Equatable {
            public var column: String
            public var expression: String
        }

        /// What each batch's UPDATE sets.
        var setList: String {
            inline
                ? assignments.map { "\(SQL.ident($0.column)) = (\($0.expression))" }.joined(separator: ", ")
                : "\(SQL.ident(touch)) = \(SQL.ident(touch))"
        }
    }

    public var name: String
    public var baseSchema: String
    /// The schema that presents the new version (`<base>_<name>`).
    public var versionSchema: String
    /// The version schema the old release uses, dropped at complete; nil when it uses the base.
    public var previousSchema: String?
    /// Expand: transactional statements run in one transaction, then the CONCURRENTLY ones.
    public var start: [Statement]
    public var backfills: [Backfill]
    /// Contract: CONCURRENTLY statements first, then one transaction.
    public var complete: [Statement]
    /// Undo of start: CONCURRENTLY statements first, then one transaction.
    public var rollback: [Statement]
    public var newVersion: VersionSchema
    /// Tables and columns before start, so tables and columns made by `sql` operations can be
    /// added to the new version.
    public var before: Catalog
    /// Order among the database's version schemas: a session whose search_path starts with a
    /// schema of this rank or higher writes as the new version (`baton.version_rank`). Nil in
    /// plans stored by a Baton that allowed one migration in flight.
    public var rank: Int?
    /// Physical tables that complete changes (renames, drops, shadow columns) or that triggers
    /// keep in step; a later migration in flight may not change them.
    public var changedTables: [String]?
    /// The application's role, when this version has a login role (named after its schema, a
    /// member of it) and the role gets rights on the version's views.
    public var appRole: String?

    /// The views of the new version, given the catalog after start has run.
    func versionStatements(after catalog: Catalog) -> [Statement] {
        let grants = appRole.map { app in [
            Statement("GRANT USAGE ON SCHEMA \(SQL.ident(versionSchema)) TO \(SQL.ident(app))", lock: "none"),
            Statement("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \(SQL.ident(versionSchema)) TO \(SQL.ident(app))", lock: "none"),
        ] } ?? []
        return version(after: catalog).createStatements(schema: versionSchema, base: baseSchema) + grants
    }

    /// The new version as it is once start has run: the planned tables and columns, plus those
    /// that `sql` operations made.
    func version(after catalog: Catalog) -> VersionSchema {
        var version = newVersion
        let known = Set(before.tables.keys).union(version.tables.map(\.physical))
        for table in catalog.tables.values.sorted(by: { $0.name < $1.name }) where !known.contains(table.name) {
            version.tables.append(.init(name: table.name, physical: table.name, columns: table.columns.map { .init(name: $0.name, physical: $0.name) }))
        }
        for (index, table) in version.tables.enumerated() {
            guard let now = catalog.tables[table.physical], let then = before.tables[table.physical] else { continue }
            let mapped = Set(table.columns.map(\.physical))
            for column in now.columns where then.column(column.name) == nil && !mapped.contains(column.name) && !column.name.hasPrefix(Self.shadowPrefix) {
                version.tables[index].columns.append(.init(name: column.name, physical: column.name))
            }
        }
        version.tables.removeAll { catalog.tables[$0.physical] == nil }
        return version
    }

    static let shadowPrefix = "_baton_new_"

    /// Every statement with its phase, for `baton migrate plan`.
    public var phases: [(phase: String, statements: [Statement])] {
        [
            ("start", start),
            ("backfill", backfills.map { backfill in
                Statement(
                    "\(backfill.inline ? "SET baton.backfill = 'on'; " : "")UPDATE \(SQL.qualified(baseSchema, backfill.table)) SET \(backfill.setList) WHERE ctid >= '(A,0)' AND ctid < '(B,0)'  -- per batch of the pages the table had at start",
                    lock: "ROW EXCLUSIVE on \(backfill.table); row locks on one batch")
            }),
            ("version", newVersion.createStatements(schema: versionSchema, base: baseSchema)),
            ("complete", complete),
            ("rollback", rollback),
        ]
    }
}
