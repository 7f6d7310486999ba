import Foundation
import Logging
import PostgresNIO

/// Projects, sessions and notes in PostgreSQL, shared by every server of the fleet.
///
/// 5.3 predates Baton's migrations: it uses the tables in `public` and creates them when missing.
/// 5.4 is built against migration 54_segment_words (segments.translation renamed to target, a
/// NOT NULL words column) and reads and writes through that migration's version schema, so 5.3
/// and 5.4 share the database during the rolling upgrade.
struct PostgresStore: TranslationStore {
    static let migration = "54_segment_words"
    static let versionSchema = "public_54_segment_words"

    let client: PostgresClient
    let release: Release
    let logger = Logger(label: "translate.db")

    /// Parses `postgres://USER[:PASSWORD]@HOST:PORT/DATABASE`.
    static func configuration(url: String, release: Release) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, let user = components.user
        else {
            throw ConfigurationError(message: "--database-url '\(url)': expected postgres://USER@HOST:PORT/DATABASE")
        }
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : "postgres"
        var configuration = PostgresClient.Configuration(host: host, port: components.port ?? 5432, username: user, password: components.password, database: database, tls: .disable)
        // Baton's convention: application_name says which version schema a connection uses, so
        // `baton migrate complete` knows while 5.3 servers are still connected.
        let schema = release == .v5_4 ? versionSchema : "public"
        configuration.options.additionalStartupParameters = [("application_name", "baton:\(schema)/translate-\(release.rawValue)")]
        if release == .v5_4 { configuration.options.additionalStartupParameters.append(("search_path", versionSchema)) }
        return configuration
    }

    struct ConfigurationError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Creates the tables once; servers starting together take turns under an advisory lock.
    func prepare() async throws {
        if release == .v5_4 {
            let found = try await client.query("SELECT count(*)::int FROM pg_namespace WHERE nspname = \(Self.versionSchema)", logger: logger).collect().first?.decode(Int.self)
            guard found == 1 else {
                throw ConfigurationError(message: "release 5.4 uses schema \(Self.versionSchema), which migration \(Self.migration) makes; run: baton migrate start Examples/translate/migrations/\(Self.migration).json")
            }
            return
        }
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(5354)", logger: logger)
            do {
                try await connection.query("CREATE TABLE IF NOT EXISTS sessions (id text PRIMARY KEY, username text NOT NULL, created timestamptz NOT NULL DEFAULT now())", logger: logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS notes (token text PRIMARY KEY, username text NOT NULL, created timestamptz NOT NULL DEFAULT now())", logger: logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS projects (id int PRIMARY KEY, name text NOT NULL)", logger: logger)
                try await connection.query("CREATE TABLE IF NOT EXISTS segments (id int PRIMARY KEY, project_id int NOT NULL REFERENCES projects, source text NOT NULL, translation text)", logger: logger)
                for project in seedProjects {
                    try await connection.query("INSERT INTO projects (id, name) VALUES (\(project.id), \(project.name)) ON CONFLICT DO NOTHING", logger: logger)
                    for segment in project.segments {
                        try await connection.query(
                            "INSERT INTO segments (id, project_id, source, translation) VALUES (\(segment.id), \(project.id), \(segment.source), \(segment.translation)) ON CONFLICT DO NOTHING",
                            logger: logger
                        )
                    }
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(5354)", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(5354)", logger: logger)
        }
    }

    func projects() async throws -> [Project] {
        var projects: [Int: Project] = [:]
        for try await (id, name) in try await client.query("SELECT id, name FROM projects ORDER BY id", logger: logger).decode((Int, String).self) {
            projects[id] = Project(id: id, name: name, segments: [])
        }
        if release == .v5_4 {
            let rows = try await client.query("SELECT id, project_id, source, target, words FROM segments ORDER BY id", logger: logger)
            for try await (id, project, source, translation, words) in rows.decode((Int, Int, String, String?, Int).self) {
                projects[project]?.segments.append(Segment(id: id, source: source, translation: translation, words: words))
            }
        } else {
            let rows = try await client.query("SELECT id, project_id, source, translation FROM segments ORDER BY id", logger: logger)
            for try await (id, project, source, translation) in rows.decode((Int, Int, String, String?).self) {
                projects[project]?.segments.append(Segment(id: id, source: source, translation: translation))
            }
        }
        return projects.values.sorted { $0.id < $1.id }
    }

    func update(segment id: Int, translation: String) async throws -> Segment? {
        if release == .v5_4 {
            let rows = try await client.query("UPDATE segments SET target = \(translation) WHERE id = \(id) RETURNING id, source, target, words", logger: logger)
            for try await (id, source, translation, words) in rows.decode((Int, String, String?, Int).self) {
                return Segment(id: id, source: source, translation: translation, words: words)
            }
            return nil
        }
        let rows = try await client.query("UPDATE segments SET translation = \(translation) WHERE id = \(id) RETURNING id, source, translation", logger: logger)
        for try await (id, source, translation) in rows.decode((Int, String, String?).self) {
            return Segment(id: id, source: source, translation: translation)
        }
        return nil
    }

    func login(user: String) async throws -> String {
        let id = UUID().uuidString
        try await client.query("INSERT INTO sessions (id, username) VALUES (\(id), \(user))", logger: logger)
        return id
    }

    func user(session: String) async throws -> String? {
        for try await user in try await client.query("SELECT username FROM sessions WHERE id = \(session)", logger: logger).decode(String.self) {
            return user
        }
        return nil
    }

    func add(note token: String, user: String) async throws {
        try await client.query("INSERT INTO notes (token, username) VALUES (\(token), \(user)) ON CONFLICT DO NOTHING", logger: logger)
    }

    func note(_ token: String) async throws -> Note? {
        for try await user in try await client.query("SELECT username FROM notes WHERE token = \(token)", logger: logger).decode(String.self) {
            return Note(token: token, user: user)
        }
        return nil
    }
}
