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

    /// The plan for `migration` against the database as it is now; nothing runs.
    public func plan(_ migration: Migration) async throws -> MigrationPlan {
        let records = try await state.records()
        if let unfinished = records.last(where: { $0.status != .complete }), unfinished.name != migration.name {
            throw BatonError(.conflict, "migration '\(unfinished.name)' is \(unfinished.status == .active ? "active" : "still backfilling"); complete or roll it back before starting '\(migration.name)'")
        }
        if let done = records.first(where: { $0.name == migration.name }) {
            throw BatonError(.conflict, "migration '\(migration.name)' was already \(done.status == .complete ? "completed" : "started") (\(done.startedAt))")
        }
        let catalog = try await Catalog.read(session, schema: schema)
        if catalog.tables.isEmpty, try await session.value("SELECT 1 FROM pg_namespace WHERE nspname = \(SQL.literal(schema))") == nil {
            throw BatonError(.notFound, "schema '\(schema)' does not exist")
        }
        let previous = records.last(where: { $0.status == .complete }).map(\.plan.versionSchema)
        return try MigrationPlanner.plan(migration, catalog: catalog, previousSchema: previous)
    }

    /// Expand: the physical changes, the backfill, then the new version's schema. A failure
    /// before the backfill leaves the database as it was; a failure during it rolls back; a
    /// killed process leaves the backfill to `resumeBackfill`.
    public func start(_ migration: Migration, options: BackfillOptions = .init()) async throws {
        try await state.lock()
        try await initialize()
        let plan = try await self.plan(migration)
        events(.phase("start \(migration.name): \(plan.start.count) statements"))
        do {
            try await session.transaction {
                try await state.insert(plan)
                for statement in plan.start where statement.transactional { try await run(statement) }
            }
        } catch let error as SessionError {
            throw BatonError(.io, "start of '\(migration.name)' failed, nothing was changed: \(error)")
        }
        do {
            for statement in plan.start where !statement.transactional { try await session.executeAlone(statement.sql) }
            try await finishStart(plan, options: options)
        } catch {
            events(.phase("start failed, rolling back: \(error)"))
            do {
                try await rollback(plan)
            } catch let rollbackError {
                throw BatonError(.io, "start of '\(migration.name)' failed (\(error)) and so did its rollback (\(rollbackError)); run baton migrate rollback")
            }
            throw BatonError(.io, "start of '\(migration.name)' failed and was rolled back: \(error)")
        }
    }

    /// Continues a backfill whose process was killed, then makes the new version.
    public func resumeBackfill(options: BackfillOptions = .init()) async throws {
        try await state.lock()
        guard let record = try await state.unfinished() else { throw BatonError(.notFound, "no migration is in progress") }
        guard record.status == .backfilling else {
            events(.phase("\(record.name): the backfill is already finished"))
            return
        }
        try await finishStart(record.plan, options: options)
    }

    private func finishStart(_ plan: MigrationPlan, options: BackfillOptions) async throws {
        for target in plan.backfills {
            events(.phase("backfill \(target.table)"))
            try await Backfill(session: session, baseSchema: schema, migration: plan.name, target: target, options: options).run { self.events(.backfill($0)) }
        }
        try await session.transaction {
            let catalog = try await Catalog.read(session, schema: schema)
            try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(plan.versionSchema)) CASCADE")
            for statement in plan.versionStatements(after: catalog) { try await session.execute(statement.sql) }
            try await state.setStatus(plan.name, .active)
        }
        events(.phase("\(plan.name) is active: the new version is schema \(plan.versionSchema)"))
    }

    /// Contract: constraints proven, old columns and the old version's schema dropped.
    public func complete() async throws {
        try await state.lock()
        guard let record = try await state.unfinished() else { throw BatonError(.notFound, "no migration is in progress") }
        guard record.status == .active else {
            throw BatonError(.conflict, "the backfill of '\(record.name)' has not finished; run baton migrate backfill --resume first")
        }
        let plan = record.plan
        events(.phase("complete \(plan.name): \(plan.complete.count) statements"))
        for statement in plan.complete where !statement.transactional { try await session.executeAlone(statement.sql) }
        try await session.transaction {
            if let previous = plan.previousSchema { try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(previous)) CASCADE") }
            for statement in plan.complete where statement.transactional { try await run(statement) }
            try await state.setStatus(plan.name, .complete)
        }
        events(.phase("\(plan.name) is complete"))
    }

    /// Undoes the migration in progress; the old version never noticed it.
    public func rollback() async throws {
        try await state.lock()
        guard let record = try await state.unfinished() else { throw BatonError(.notFound, "no migration is in progress") }
        try await rollback(record.plan)
    }

    private func rollback(_ plan: MigrationPlan) async throws {
        events(.phase("rollback \(plan.name): \(plan.rollback.count) statements"))
        for statement in plan.rollback where !statement.transactional { try await session.executeAlone(statement.sql) }
        try await session.transaction {
            try await session.execute("DROP SCHEMA IF EXISTS \(SQL.ident(plan.versionSchema)) CASCADE")
            for statement in plan.rollback where statement.transactional { try await run(statement) }
            try await state.delete(plan.name)
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
        let active = records.last { $0.status != .complete }
        var backfills: [BackfillProgress] = []
        if let active {
            backfills = try await session.rows("""
                SELECT table_name, rows, total, done FROM baton.backfills
                WHERE schema = \(SQL.literal(schema)) AND migration = \(SQL.literal(active.name)) ORDER BY table_name
                """, as: (String, Int64, Int64, Bool).self).map { BackfillProgress(table: $0, rows: Int($1), total: Int($2), done: $3, rowsPerSecond: 0) }
        }
        return MigrationReport(
            schema: schema, initialized: initialized, latest: Self.latest(records, base: schema), active: active.map(entry),
            backfills: backfills, history: records.filter { $0.status == .complete }.map(entry))
    }

    /// The newest version schema that exists: the active migration's once its backfill is done,
    /// else the last completed one, else the base schema.
    public func latest() async throws -> String { Self.latest(try await state.records(), base: schema) }

    static func latest(_ records: [MigrationState.Record], base: String) -> String {
        records.last { $0.status != .backfilling }?.plan.versionSchema ?? base
    }

    /// Every file in `directory` not yet completed, in name order, each started and completed;
    /// one left half-done (active or backfilling) is finished first.
    public func migrate(directory: String, options: BackfillOptions = .init()) async throws -> [String] {
        let files = try Migration.files(in: directory)
        var done = Set(try await state.records().filter { $0.status == .complete }.map(\.name))
        var applied: [String] = []
        for file in files {
            let migration = try Migration.load(path: file)
            if done.contains(migration.name) { continue }
            if let unfinished = try await state.unfinished() {
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
