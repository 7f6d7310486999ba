import BatonCore
import BatonMigrate
import Foundation
import Testing

/// One throwaway PostgreSQL cluster for a whole suite (a suite trait), and a fresh database per
/// test, so tests are independent without paying for initdb each time.
struct SharedPostgres: SuiteTrait, TestScoping {
    @TaskLocal static var cluster: PostgresCluster?
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "baton-migrate-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let cluster = try await PostgresCluster.start(under: directory)
        defer {
            cluster.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await Self.$cluster.withValue(cluster) { try await function() }
    }
}

extension Trait where Self == SharedPostgres {
    static var postgres: SharedPostgres { SharedPostgres() }
}

/// A fresh database with its own connections: one for Baton, one per version for the test.
final class MigrationDatabase: @unchecked Sendable {
    let cluster: PostgresCluster
    let name: String
    let session: PostgresSession
    let migrator: Migrator

    init(_ setup: String = "") async throws {
        cluster = try #require(SharedPostgres.cluster)
        name = "t\(UInt32.random(in: 0...UInt32.max))"
        try cluster.psql("CREATE DATABASE \(name)")
        if !setup.isEmpty { try cluster.psql(setup, database: name) }
        session = try await PostgresSession.connect(url: cluster.url(database: name))
        migrator = Migrator(session: session)
        do {
            try await migrator.initialize()
        } catch {
            await session.close()
            throw error
        }
    }

    var url: String { cluster.url(database: name) }

    /// Connections by search_path, reused across queries and closed at the end.
    private var versions: [String: PostgresSession] = [:]

    /// Runs `body` with a fresh database and closes every connection however it ends (postgres-nio
    /// insists that connections are closed before they go away).
    static func with(_ setup: String = "", _ body: (MigrationDatabase) async throws -> Void) async throws {
        let db = try await MigrationDatabase(setup)
        do {
            try await body(db)
        } catch {
            await db.close()
            throw error
        }
        await db.close()
    }

    func close() async {
        for connection in versions.values { await connection.close() }
        versions = [:]
        await session.close()
    }

    func dump() throws -> String { try cluster.dump(database: name) }

    /// Rows of `sql` run with `search_path` set to `version`, each row's cells joined by "|".
    func query(_ sql: String, as version: String = "public") async throws -> [String] {
        let connection: PostgresSession
        if let open = versions[version] {
            connection = open
        } else {
            connection = try await PostgresSession.connect(url: url)
            versions[version] = connection
            try await connection.execute("SET search_path = \(SQL.ident(version))")
        }
        return try await connection.rows(sql).map { $0.map { $0 ?? "NULL" }.joined(separator: "|") }
    }

    func execute(_ sql: String, as version: String = "public") async throws {
        _ = try await query(sql, as: version)
    }

    func start(_ json: String, options: BackfillOptions = .init()) async throws -> Migration {
        let migration = try Migration.parse(json, file: "test.json")
        try await migrator.start(migration, options: options)
        return migration
    }

    func version(_ migration: Migration) -> String { "public_\(migration.versionSchema ?? migration.name)" }
}
