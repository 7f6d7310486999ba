import BatonCore
import Foundation

/// Events of a migration, for the CLI's progress display.
public enum MigrationEvent: Sendable {
    case phase(String)
    case backfill(BackfillProgress)
}

/// Runs migrations against one database schema: start (expand and backfill), complete
/// (contract), rollback, and the questions around them. Every phase's DDL runs in one
/// transaction with a short lock timeout, retried; CONCURRENTLY statements run on their own.
public final class Migrator: @unchecked Sendable {
    let session: PostgresSession
    public let schema: String
    let state: MigrationState
    let events: @Sendable (MigrationEvent) -> Void

    public init(session: PostgresSession, schema: String = "public", events: @escaping @Sendable (MigrationEvent) -> Void = { _ in }) {
        self.session = session
        self.schema = schema
        state = MigrationState(session: session, schema: schema)
        self.events = events
    }

    public func initialize() async throws {
        try await session.transaction { try await state.initialize() }
    }

    /// The plan for `migration` against the database as it is now; nothing runs. With
    /// migrations in flight it builds on the newest of them.
    public func plan(_ migration: Migration, appRole: String? = nil) async throws -> MigrationPlan {
        let records = try await state.records()
        if let done = records.first(where: { $0.name == migration.name }) {
            throw BatonError(.conflict, "migration '\(migration.name)' was already \(done.status == .complete ? "completed" : "started") (\(done.startedAt))")
        }
        let inFlight = records.filter { $0.status != .complete }
        if let old = inFlight.first(where: { $0.plan.rank == nil }) {
            throw BatonError(.conflict, "migration '\(old.name)' was started by an earlier Baton that ran one migration at a time; complete or roll it back before starting '\(migration.name)'")
        }
        let catalog = try await Catalog.read(session, schema: schema)
        if catalog.tables.isEmpty, try await session.value("SELECT 1 FROM pg_namespace WHERE nspname = \(SQL.literal(schema))") == nil {
            throw BatonError(.notFound, "schema '\(schema)' does not exist")
        }
        if let appRole {
            guard try await session.value("SELECT 1 FROM pg_roles WHERE rolname = \(SQL.literal(appRole))") != nil else {
                throw BatonError(.notFound, "--app-role: no role '\(appRole)' in this cluster")
            }
            guard try await session.value("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user") == "t" else {
                throw BatonError(.invalidArgument, "--app-role: this role may not create roles; give it CREATEROLE (and, on PostgreSQL 16+, ADMIN OPTION on '\(appRole)')")
            }
        }
        let previous = records.last?.plan
        let predecessors = MigrationPlanner.Predecessors(
            previousSchema: previous?.versionSchema, previousLoginRole: previous.flatMap { $0.appRole == nil ? nil : ($0.versionSchema, $0.name) },
            inFlight: inFlight.map(\.plan), rank: (records.compactMap(\.plan.rank).max() ?? 0) + 1)
        return try MigrationPlanner.plan(migration, catalog: catalog, after: predecessors, appRole: appRole)
    }

    /// Expand: the physical changes, the backfill, then the new version's schema. A failure
    /// before the backfill leaves the database as it was; a failure during it rolls back (when no
    /// later migration builds on this one); a killed process leaves the backfill to
    /// `resumeBackfill`. The backfill holds only its own lock, so other migrations can start and
    /// complete while it runs.
    public func start(_ migration: Migration, options: BackfillOptions = .init(), appRole: String? = nil) async throws {
        if options.maxReplicaLag != nil { try await Backfill.checkReplicaVisibility(session) }
        let plan = try await state.withSchemaLock {
            try await initialize()
            let plan = try await self.plan(migration, appRole: appRole)
            events(.phase("start \(migration.name): \(plan.start.count) statements"))
            do {
                try await session.transaction {
                    try await state.insert(plan)
                    try await state.refreshRanks()
                    for statement in plan.start where statement.transactional { try await run(statement) }
                }
            } catch let error as SessionError {
                throw BatonError(.io, "start of '\(migration.name)' failed, nothing was changed: \(error)")
            }
            if appRole != nil, try await session.value("SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user") != "true" {
                events(.phase("login role \(plan.versionSchema) has no password (only a superuser may copy the app's): give it one, or let the pooler authenticate it"))
            }
            do {
                for statement in plan.start where !statement.transactional { try await session.executeAlone(statement.sql) }
            } catch {
                try await rollbackAfterFailure(plan, error)
            }
            return plan
        }
        do {
            try await finishStart(plan, options: options)
        } catch let error as BatonError where error.code == .conflict {
            throw error
        } catch {
            try await state.withSchemaLock { () async throws -> Void in try await rollbackAfterFailure(plan, error) }
        }
    }

    /// Undoes a start that failed, unless a later migration was started on top of it meanwhile.
    private func rollbackAfterFailure(_ plan: MigrationPlan, _ error: any Error) async throws -> Never {
        if let newer = try await state.records().last(where: { $0.status != .complete }), newer.name != plan.name {
            throw BatonError(.io, "start of '\(plan.name)' failed (\(error)); '\(newer.name)' builds on it, so it was left in place: fix the cause and run baton migrate backfill --resume, or roll back '\(newer.name)' and then '\(plan.name)'")
        }
        events(.phase("start failed, rolling back: \(error)"))
        do {
            try await rollback(plan)
        } catch let rollbackError {
            throw BatonError(.io, "start of '\(plan.name)' failed (\(error)) and so did its rollback (\(rollbackError)); run baton migrate rollback")
        }
        throw BatonError(.io, "start of '\(plan.name)' failed and was rolled back: \(error)")
    }

    /// Continues every backfill whose process was killed, oldest migration first, then makes
    /// each one's new version.
    public func resumeBackfill(options: BackfillOptions = .init()) async throws {
        if options.maxReplicaLag != nil { try await Backfill.checkReplicaVisibility(session) }
        let backfilling = try await state.records().filter { $0.status == .backfilling }
        guard !backfilling.isEmpty else {
            if try await state.records().contains(where: { $0.status == .active }) {
                events(.phase("no backfill is left to run"))
                return
            }
            throw BatonError(.notFound, "no migration is in progress")
        }
        for record in backfilling {
            do {
                try await finishStart(record.plan, options: options)
            } catch let error as BatonError where error.code == .conflict {
                events(.phase("\(record.name): \(error.message)"))
            }
        }
    }

    private func finishStart(_ plan: MigrationPlan, options: BackfillOptions) async throws {
        // The backfill is the old side to the triggers: its search_path is the base schema.
        try await state.pointAtBase()
        try await state.withBackfillLock(plan.name) {
            for target in plan.backfills {
                events(.phase("backfill \(target.table)"))
                try await Backfill(session: session, baseSchema: schema, migration: plan.name, target: target, options: options).run { self.events(.backfill($0)) }
            }
        }
        try await state.withSchemaLock { try await activateReady() }
        if try await state.records().first(where: { $0.name == plan.name })?.status == .backfilling {
            events(.phase("\(plan.name)'s backfill is done; it becomes active when the migrations before it are"))
        }
    }

    /// Makes the version schema of every migration whose backfill is done, oldest first, and
    /// stops at the first one still backfilling: a version built on another's columns must not
    /// be used before those columns are filled.
    private func activateReady() async throws {
        for record in try await state.records() where record.status != .complete {
            guard record.status == .backfilling else { continue }
            guard try await state.backfillsDone(record.plan) else { return }
            // A migration in flight before this one may have completed meanwhile: its renames
            // are in the stored plan now.
            try await session.transaction {
                let catalog = try await Catalog.read(session, schema: schema)
                try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(record.plan.versionSchema)) CASCADE")
                for statement in record.plan.versionStatements(after: catalog) { try await session.execute(statement.sql) }
                try await state.setStatus(record.name, .active)
            }
            events(.phase("\(record.name) is active: the new version is schema \(record.plan.versionSchema)"))
        }
    }

    /// Contract of the oldest migration in flight: constraints proven, old columns and the old
    /// version's schema dropped. Refused while a session still uses the old version (see
    /// `sessionsUsing`) or `alsoInUse` names users of it (the fleet's nodes), unless `force`.
    public func complete(force: Bool = false, alsoInUse: @Sendable (String) async throws -> [String] = { _ in [] }) async throws {
        // Asking the fleet may take a while (hosts over SSH), so it happens before the lock.
        let oldest = try await state.records().first { $0.status != .complete }
        var fleetUsers: [String] = []
        if let oldest { fleetUsers = try await alsoInUse(oldest.plan.previousSchema ?? schema) }
        try await state.withSchemaLock {
            let records = try await state.records()
            guard let record = records.first(where: { $0.status != .complete }) else { throw BatonError(.notFound, "no migration is in progress") }
            guard record.name == oldest?.name else { throw BatonError(.conflict, "the migrations in flight changed meanwhile; run complete again") }
            guard record.status == .active else {
                throw BatonError(.conflict, "the backfill of '\(record.name)' has not finished; run baton migrate backfill --resume first")
            }
            let plan = record.plan
            let old = plan.previousSchema ?? schema
            let users = try await fleetUsers + sessionsUsing(old).map { "\($0.name) (\($0.count))" }
            if !users.isEmpty {
                let list = users.joined(separator: ", ")
                guard force else {
                    throw BatonError(.conflict, "the old version \(old) is still in use by \(list); upgrade those servers first, or pass --force")
                }
                events(.phase("completing although the old version \(old) is in use by \(list) (--force)"))
            }
            events(.phase("complete \(plan.name): \(plan.complete.count) statements"))
            let catalog = try await Catalog.read(session, schema: schema)
            let finished = plan.version(after: catalog)
            for statement in plan.complete where !statement.transactional { try await session.executeAlone(statement.sql) }
            try await session.transaction {
                if let previous = plan.previousSchema { try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(previous)) CASCADE") }
                for statement in plan.complete where statement.transactional { try await run(statement) }
                try await state.setStatus(plan.name, .complete)
                // Later migrations' versions name this one's shadow columns and tables, which
                // now have their final names.
                for later in records.drop(while: { $0.name != plan.name }).dropFirst() {
                    var updated = later.plan
                    updated.newVersion = updated.newVersion.renamed(byCompleting: finished)
                    try await state.update(updated)
                }
            }
            events(.phase("\(plan.name) is complete"))
        }
    }

    /// Sessions that say in `application_name` that they use `versionSchema`: Baton's convention
    /// is `baton:SCHEMA` or `baton:SCHEMA/ANYTHING` (e.g. `baton:public_02_add_words/web1`).
    /// PostgreSQL keeps 63 bytes of an application_name, so both are compared cut to that.
    public func sessionsUsing(_ versionSchema: String) async throws -> [(name: String, count: Int)] {
        let tag = SQL.literal("baton:" + versionSchema)
        return try await session.rows("""
            SELECT application_name, count(*)::int FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND (application_name = left(\(tag), 63) OR starts_with(application_name, left(\(tag) || '/', 63)))
            GROUP BY 1 ORDER BY 1
            """, as: (String, Int).self).map { (name: $0, count: $1) }
    }

    /// Undoes the newest migration in flight; the older versions never noticed it.
    public func rollback() async throws {
        try await state.withSchemaLock {
            guard let record = try await state.records().last(where: { $0.status != .complete }) else { throw BatonError(.notFound, "no migration is in progress") }
            // Not under a running backfill: stop that process first (it resumes or rolls back later).
            try await state.withBackfillLock(record.name) { try await rollback(record.plan) }
        }
    }

    private func rollback(_ plan: MigrationPlan) async throws {
        events(.phase("rollback \(plan.name): \(plan.rollback.count) statements"))
        for statement in plan.rollback where !statement.transactional { try await session.executeAlone(statement.sql) }
        try await session.transaction {
            try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(plan.versionSchema)) CASCADE")
            for statement in plan.rollback where statement.transactional { try await run(statement) }
            try await state.delete(plan.name)
            try await state.refreshRanks()
        }
        events(.phase("\(plan.name) rolled back"))
    }

    private func run(_ statement: Statement) async throws {
        if statement.script { try await session.executeScript(statement.sql) } else { try await session.execute(statement.sql) }
    }

    public func status() async throws -> MigrationReport {
        let records = try await state.records()
        let initialized = try await state.isInitialized()
        func entry(_ record: MigrationState.Record) -> MigrationReport.Entry {
            .init(name: record.name, status: record.status, versionSchema: record.plan.versionSchema, startedAt: record.startedAt, completedAt: record.completedAt)
        }
        let inFlight = records.filter { $0.status != .complete }
        var backfills: [BackfillProgress] = []
        if !inFlight.isEmpty {
            backfills = try await session.rows("""
                SELECT migration, table_name, rows, total, done FROM baton.backfills
                WHERE schema = \(SQL.literal(schema)) AND migration IN (\(inFlight.map { SQL.literal($0.name) }.joined(separator: ", ")))
                ORDER BY migration, table_name
                """, as: (String, String, Int64, Int64, Bool).self).map {
                BackfillProgress(migration: $0, table: $1, rows: Int($2), total: Int($3), done: $4, rowsPerSecond: 0)
            }
        }
        return MigrationReport(
            schema: schema, initialized: initialized, latest: Self.latest(records, base: schema), inFlight: inFlight.map(entry),
            backfills: backfills, history: records.filter { $0.status == .complete }.map(entry))
    }

    /// The newest version schema that exists: the active migration's once its backfill is done,
    /// else the last completed one, else the base schema.
    public func latest() async throws -> String { Self.latest(try await state.records(), base: schema) }

    static func latest(_ records: [MigrationState.Record], base: String) -> String {
        records.last { $0.status != .backfilling }?.plan.versionSchema ?? base
    }

    /// Every file in `directory` not yet completed, in name order, each started and completed;
    /// those left half-done (active or backfilling) are finished first, in order.
    public func migrate(directory: String, options: BackfillOptions = .init()) async throws -> [String] {
        let files = try Migration.files(in: directory)
        var done = Set(try await state.records().filter { $0.status == .complete }.map(\.name))
        var applied: [String] = []
        for file in files {
            let migration = try Migration.load(path: file)
            if done.contains(migration.name) { continue }
            if let unfinished = try await state.records().first(where: { $0.status != .complete }) {
                guard unfinished.name == migration.name else {
                    throw BatonError(.conflict, "migration '\(unfinished.name)' is in progress, but the next file is '\(migration.name)'; complete or roll back '\(unfinished.name)' first")
                }
                if unfinished.status == .backfilling { try await resumeBackfill(options: options) }
            } else {
                try await start(migration, options: options)
            }
            try await complete()
            done.insert(migration.name)
            applied.append(migration.name)
        }
        return applied
    }
}
