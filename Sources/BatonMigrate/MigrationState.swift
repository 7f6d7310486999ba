import BatonCore
import Foundation

/// Baton's own tables in the `baton` schema: every migration with its plan and status, and each
/// backfill's position. A partial unique index lets only one migration per schema be unfinished.
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
        "CREATE UNIQUE INDEX IF NOT EXISTS migrations_one_unfinished ON baton.migrations (schema) WHERE status <> 'complete'",
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

    func unfinished() async throws -> Record? { try await records().last { $0.status != .complete } }

    func insert(_ plan: MigrationPlan) async throws {
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        try await session.execute("""
            INSERT INTO baton.migrations (schema, name, status, plan) VALUES (\(SQL.literal(schema)), \(SQL.literal(plan.name)), 'backfilling', \(SQL.literal(json)))
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

    /// Held for the whole command, so two `baton migrate` runs on one schema never interleave.
    /// Also points the session at the base schema: raw SQL names tables as the base schema does,
    /// and the session must not look like the new version to the triggers.
    func lock() async throws {
        try await session.execute("SET search_path = \(SQL.ident(schema))")
        guard try await session.value("SELECT pg_try_advisory_lock(hashtext(\(SQL.literal("baton.migrate." + schema))))::text") == "true" else {
            throw BatonError(.conflict, "another baton migrate is working on schema '\(schema)'; wait for it to finish")
        }
    }
}
