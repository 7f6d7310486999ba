import BatonCore
import BatonMigrate
import BatonTesting
import Foundation
import Testing

/// `--app-role` behind a real PgBouncer in transaction mode: the old release logs in as the app's
/// role, the new one as the version's login role; clients of both write at once through one
/// server connection per user, and each keeps its version. complete drops the old version's
/// role, rollback the new one's.
@Suite(.serialized, .postgres) struct PgBouncerTests {
    @Test func eachVersionKeepsItsSchemaThroughTransactionPooling() async throws {
        let cluster = try #require(SharedPostgres.cluster)
        let app = "app_\(UInt32.random(in: 0...UInt32.max))"
        try await MigrationDatabase.with("""
            CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL);
            INSERT INTO products (name) SELECT 'p' || g FROM generate_series(1, 100) g;
            CREATE ROLE \(app) LOGIN;
            GRANT ALL ON ALL TABLES IN SCHEMA public TO \(app);
            GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \(app);
            """) { db in
            let first = try Migration.parse(#"""
                {"name": "02_title", "operations": [
                  {"rename_column": {"table": "products", "from": "name", "to": "title"}},
                  {"add_column": {"table": "products", "up": "'sku-' || id", "column": {"name": "sku", "type": "text"}}}]}
                """#, file: "02.json")
            try await db.migrator.start(first, appRole: app)
            let role = db.version(first)
            #expect(try await db.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = \(SQL.literal(role))") == ["t"])

            let bouncer = try await LivePgBouncer.start(users: [app, role], database: db.name, serverPort: cluster.port)
            var sessions: [PostgresSession] = []
            do {
                // Two clients per release, sharing one server connection per user.
                for user in [app, app, role, role] { sessions.append(try await PostgresSession.connect(url: bouncer.url(user: user, database: db.name))) }
                #expect(try await sessions[2].value("SHOW search_path") == role)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, session) in sessions.enumerated() {
                        group.addTask {
                            for row in 0..<25 {
                                let sql = index < 2
                                    ? "INSERT INTO products (name) VALUES ('old-\(index)-\(row)')"
                                    : "INSERT INTO products (title, sku) VALUES ('new-\(index)-\(row)', 'given')"
                                try await session.execute(sql)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await sessions[0].value("SELECT count(*) FROM products WHERE name LIKE 'old-%' OR name LIKE 'new-%'") == "100")
                #expect(try await sessions[3].value("SELECT count(*) FROM products WHERE title LIKE 'new-%' AND sku = 'given'") == "50")
                #expect(try await sessions[3].value("SELECT count(*) FROM products WHERE title LIKE 'old-%' AND sku = 'sku-' || id") == "50")
            } catch {
                for session in sessions { await session.close() }
                bouncer.stop()
                throw error
            }
            for session in sessions { await session.close() }
            bouncer.stop()

            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM pg_roles WHERE rolname = \(SQL.literal(role))") == ["1"], "the live version keeps its role")
            let second = try Migration.parse(#"{"name": "03_drop_sku", "operations": [{"drop_column": {"table": "products", "column": "sku"}}]}"#, file: "03.json")
            // A role of that name that Baton did not make is refused, and survives the failed start.
            try await db.execute("CREATE ROLE \(SQL.ident(db.version(second)))")
            let taken = await #expect(throws: BatonError.self) { try await db.migrator.start(second, appRole: app) }
            #expect(taken?.description.contains("role \(db.version(second)) already exists and is not this migration's login role") == true, "\(taken?.description ?? "")")
            #expect(try await db.query("SELECT count(*) FROM pg_roles WHERE rolname = \(SQL.literal(db.version(second)))") == ["1"])
            try await db.execute("DROP ROLE \(SQL.ident(db.version(second)))")
            try await db.migrator.start(second, appRole: app)
            try await db.migrator.rollback()
            #expect(try await db.query("SELECT count(*) FROM pg_roles WHERE rolname = \(SQL.literal(db.version(second)))") == ["0"], "rollback drops the new role")
            try await db.migrator.start(second, appRole: app)
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM pg_roles WHERE rolname = \(SQL.literal(role))") == ["0"], "complete drops the old version's role")
            try await db.execute("DROP ROLE \(SQL.ident(db.version(second)))")
            try await db.execute("DROP OWNED BY \(app)")
            try await db.execute("DROP ROLE \(app)")
        }
    }
}
