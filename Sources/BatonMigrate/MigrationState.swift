import BatonCore
import Foundation

/// Baton's own tables in the `baton` schema: every migration with its plan and status, and each
/// backfill's position; and `baton.version_rank`, which orders the version schemas for the
/// migrations' triggers.
struct MigrationState {
    let session: PostgresSession
    let schema: String

    struct Record: Sendable {
        var name: String
        var status: MigrationStatus
        var plan: MigrationPlan
        var startedAt: String
        var completedAt: String?
    }

    static let statements = [
        "CREATE SCHEMA IF NOT EXISTS baton",
        """
        CREATE TABLE IF NOT EXISTS baton.migrations (
          schema text NOT NULL,
          name text NOT NULL,
          status text NOT NULL CHECK (status IN ('backfilling', 'active', 'complete')),
          plan jsonb NOT NULL,
          started_at timestamptz NOT NULL DEFAULT now(),
          completed_at timestamptz,
          PRIMARY KEY (schema, name))
        """,
        // Several migrations may be in flight now; an earlier Baton allowed one.
        "DROP INDEX IF EXISTS baton.migrations_one_unfinished",
        // The migrations' triggers call baton.version_rank as whichever role writes.
        "GRANT USAGE ON SCHEMA baton TO PUBLIC",
        """
        DO $baton$ BEGIN
          IF to_regprocedure('baton.version_rank(text)') IS NULL THEN
            CREATE FUNCTION baton.version_rank(text) RETURNS int LANGUAGE sql STABLE AS 'SELECT 0';
          END IF;
        END $baton$
        """,
        """
        CREATE TABLE IF NOT EXISTS baton.backfills (
          schema text NOT NULL,
          migration text NOT NULL,
          table_name text NOT NULL,
          position text[],
          upper text[],
          rows bigint NOT NULL DEFAULT 0,
          total bigint NOT NULL DEFAULT 0,
          done boolean NOT NULL DEFAULT false,
          PRIMARY KEY (schema, migration, table_name))
        """,
    ]

    func initialize() async throws {
        try await session.execute("SELECT pg_advisory_xact_lock(hashtext('baton.init'))")
        for statement in Self.statements { try await session.execute(statement) }
    }

    /// Whether `baton migrate init` (or a start) has made Baton's tables.
    func isInitialized() async throws -> Bool {
        try await session.value("SELECT to_regclass('baton.migrations')::text") != nil
    }

    func records() async throws -> [Record] {
        guard try await isInitialized() else { return [] }
        return try await session.rows("""
            SELECT name, status, plan::text, started_at::text, completed_at::text FROM baton.migrations
            WHERE schema = \(SQL.literal(schema)) ORDER BY started_at, name
            """, as: (String, String, String, String, String?).self).map { name, status, plan, startedAt, completedAt in
            guard let status = MigrationStatus(rawValue: status) else {
                throw BatonError(.protocolError, "baton.migrations: migration '\(name)' has an unknown status '\(status)'")
            }
            return Record(name: name, status: status, plan: try JSONDecoder().decode(MigrationPlan.self, from: Data(plan.utf8)), startedAt: startedAt, completedAt: completedAt)
        }
    }

    func insert(_ plan: MigrationPlan) async throws {
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        try await session.execute("""
            INSERT INTO baton.migrations (schema, name, status, plan) VALUES (\(SQL.literal(schema)), \(SQL.literal(plan.name)), 'backfilling', \(SQL.literal(json)))
            """)
    }

    /// Rewrites `baton.version_rank` from every migration's rank: a trigger asks it whether the
    /// writing session's version schema is its migration's or a later one.
    func refreshRanks() async throws {
        // One function for every schema's migrations: rewrites take turns.
        try await session.execute("SELECT pg_advisory_xact_lock(hashtext('baton.version_rank'))")
        let ranks = try await session.rows(
            "SELECT plan->>'versionSchema', (plan->>'rank')::int FROM baton.migrations WHERE plan ? 'rank' ORDER BY 2",
            as: (String, Int).self)
        let body = ranks.isEmpty ? "SELECT 0" : "SELECT CASE $1 " + ranks.map { "WHEN \(SQL.literal($0)) THEN \($1)" }.joined(separator: " ") + " ELSE 0 END"
        try await session.execute("CREATE OR REPLACE FUNCTION baton.version_rank(text) RETURNS int LANGUAGE sql STABLE AS \(SQL.literal(body))")
    }

    /// Whether every table of the plan's backfill has been filled (or there is none).
    func backfillsDone(_ plan: MigrationPlan) async throws -> Bool {
        guard !plan.backfills.isEmpty else { return true }
        let done = try await session.value("""
            SELECT count(*) FILTER (WHERE done) FROM baton.backfills WHERE schema = \(SQL.literal(schema)) AND migration = \(SQL.literal(plan.name))
            """)
        return Int(done ?? "0") == plan.backfills.count
    }

    func update(_ plan: MigrationPlan) async throws {
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        try await session.execute("""
            UPDATE baton.migrations SET plan = \(SQL.literal(json)) WHERE schema = \(SQL.literal(schema)) AND name = \(SQL.literal(plan.name))
            """)
    }

    func setStatus(_ name: String, _ status: MigrationStatus) async throws {
        try await session.execute("""
            UPDATE baton.migrations SET status = \(SQL.literal(status.rawValue))\(status == .complete ? ", completed_at = now()" : "")
            WHERE schema = \(SQL.literal(schema)) AND name = \(SQL.literal(name))
            """)
    }

    func delete(_ name: String) async throws {
        try await session.execute("DELETE FROM baton.backfills WHERE schema = \(SQL.literal(schema)) AND migration = \(SQL.literal(name))")
        try await session.execute("DELETE FROM baton.migrations WHERE schema = \(SQL.literal(schema)) AND name = \(SQL.literal(name))")
    }

    /// Runs `body` holding the schema's lock, so two `baton migrate` runs never change one schema
    /// at once. DDL phases are short, so a busy lock is waited for (up to `wait`). Also points the
    /// session at the base schema: raw SQL names tables as the base schema does, and the session
    /// must not look like a new version to the triggers.
    func withSchemaLock<T>(wait: Duration = .seconds(30), _ body: () async throws -> T) async throws -> T {
        try await pointAtBase()
        return try await withAdvisoryLock("baton.migrate." + schema, wait: wait, busy: "another baton migrate is changing schema '\(schema)'; wait for it to finish", body)
    }

    /// Raw SQL names tables as the base schema does, and Baton's own writes must not look like
    /// a new version to the triggers.
    func pointAtBase() async throws {
        try await session.execute("SET search_path = \(SQL.ident(schema))")
    }

    /// Runs `body` holding the lock of one migration's backfill, which may take days; other
    /// migrations start, complete and roll back meanwhile under the schema lock.
    func withBackfillLock<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        try await withAdvisoryLock("baton.backfill." + schema + "." + name, wait: .zero, busy: "the backfill of '\(name)' is running in another baton migrate", body)
    }

    private func withAdvisoryLock<T>(_ key: String, wait: Duration, busy: String, _ body: () async throws -> T) async throws -> T {
        let id = "hashtext(\(SQL.literal(key)))"
        let deadline = ContinuousClock.now + wait
        while try await session.value("SELECT pg_try_advisory_lock(\(id))::text") != "true" {
            guard ContinuousClock.now < deadline else { throw BatonError(.conflict, busy) }
            try await Task.sleep(for: .milliseconds(100))
        }
        do {
            let result = try await body()
            try await session.execute("SELECT pg_advisory_unlock(\(id))")
            return result
        } catch {
            try? await session.execute("SELECT pg_advisory_unlock(\(id))")
            throw error
        }
    }
}
