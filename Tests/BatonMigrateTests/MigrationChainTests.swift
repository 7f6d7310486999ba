import BatonCore
import BatonMigrate
import BatonTesting
import Foundation
import Testing

/// Several migrations in flight: each builds on the one before, three versions write at once,
/// they complete oldest first and roll back newest first, and a long backfill blocks nobody.
@Suite(.serialized, .postgres) struct MigrationChainTests {
    static let setup = """
        CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE orders (id serial PRIMARY KEY, product_id int NOT NULL, qty int NOT NULL);
        INSERT INTO products (name) SELECT 'p' || g FROM generate_series(1, 300) g;
        INSERT INTO orders (product_id, qty) SELECT g, g % 7 + 1 FROM generate_series(1, 300) g;
        """
    static let first = #"""
        {"name": "01_products", "operations": [
          {"rename_column": {"table": "products", "from": "name", "to": "title"}},
          {"add_column": {"table": "products", "up": "'sku-' || id", "column": {"name": "sku", "type": "text"}}},
          {"create_table": {"name": "tags", "columns": [{"name": "id", "type": "serial", "pk": true}, {"name": "label", "type": "text"}]}}]}
        """#
    static let second = #"""
        {"name": "02_orders", "operations": [
          {"add_column": {"table": "orders", "up": "qty * 10", "column": {"name": "total", "type": "int"}}},
          {"create_index": {"name": "tags_label", "table": "tags", "columns": ["label"]}}]}
        """#

    @Test func threeVersionsWriteAtOnceThroughTwoMigrationsInFlight() async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let a = db.version(try await db.start(Self.first))
            let refused = await #expect(throws: BatonError.self) {
                _ = try await db.start(#"{"name": "02_bad", "operations": [{"drop_column": {"table": "products", "column": "title"}}]}"#)
            }
            #expect(refused?.description == "test.json: operations[0].drop_column.table: table 'products' is being changed by migration '01_products', which is still in flight; complete '01_products' before this migration uses the table")
            let identity = await #expect(throws: BatonError.self) {
                _ = try await db.start(#"{"name": "02_bad", "operations": [{"set_replica_identity": {"table": "products", "identity": {"type": "full"}}}]}"#)
            }
            #expect(identity?.description.contains("table 'products' is being changed by migration '01_products'") == true)
            let b = db.version(try await db.start(Self.second))

            // An application role that is not Baton's writes through every version: the
            // triggers it fires need nothing more than its own grants.
            let role = "app_writer_\(UInt32.random(in: 0...UInt32.max))"
            try await db.execute("CREATE ROLE \(role)")
            try await db.execute("GRANT USAGE ON SCHEMA public, \(SQL.ident(a)), \(SQL.ident(b)) TO \(role)")
            try await db.execute("GRANT ALL ON ALL TABLES IN SCHEMA public, \(SQL.ident(a)), \(SQL.ident(b)) TO \(role)")
            try await db.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO \(role)")
            for version in ["public", a, b] {
                try await db.execute("SET ROLE \(role)", as: version)
                // 02's version must give total itself (NOT NULL); the older ones get qty * 10.
                try await db.execute(version == b ? "INSERT INTO orders (product_id, qty, total) VALUES (2000, 1, 10)" : "INSERT INTO orders (product_id, qty) VALUES (2000, 1)", as: version)
                try await db.execute("RESET ROLE", as: version)
            }
            #expect(try await db.query("SELECT count(*) FROM orders WHERE product_id = 2000 AND total = 10", as: b) == ["3"])
            try await db.execute("DELETE FROM orders WHERE product_id = 2000")
            try await db.execute("DROP OWNED BY \(role)")
            try await db.execute("DROP ROLE \(role)")

            // The base tables (the oldest release), 01's version and 02's version, all writing.
            try await db.execute("INSERT INTO products (name) VALUES ('base')")
            try await db.execute("INSERT INTO orders (product_id, qty) VALUES (1001, 2)")
            try await db.execute("INSERT INTO products (title, sku) VALUES ('via-a', 'sku-a')", as: a)
            try await db.execute("INSERT INTO orders (product_id, qty) VALUES (1002, 3)", as: a)
            try await db.execute("INSERT INTO products (title, sku) VALUES ('via-b', 'sku-b')", as: b)
            try await db.execute("INSERT INTO orders (product_id, qty, total) VALUES (1003, 4, 41)", as: b)
            try await db.execute("INSERT INTO tags (label) VALUES ('x')", as: b)
            try await db.execute("UPDATE products SET name = 'renamed' WHERE id = 5")

            #expect(try await db.query("SELECT count(*) FROM products WHERE name IN ('base', 'via-a', 'via-b')") == ["3"])
            #expect(try await db.query("SELECT count(*) FROM orders") == ["303"])
            for version in [a, b] {
                #expect(try await db.query("SELECT count(*) FROM products WHERE sku = 'sku-' || id", as: version) == ["301"], "\(version)")
                #expect(try await db.query("SELECT title, sku FROM products WHERE title LIKE 'via-%' ORDER BY title", as: version) == ["via-a|sku-a", "via-b|sku-b"])
                #expect(try await db.query("SELECT title FROM products WHERE id = 5", as: version) == ["renamed"])
            }
            #expect(try await db.query("SELECT count(*) FROM orders WHERE total = qty * 10", as: b) == ["302"])
            #expect(try await db.query("SELECT total FROM orders WHERE product_id = 1003", as: b) == ["41"])
            #expect(try await db.query("SELECT count(*) FROM tags", as: a) == ["1"])

            let status = try await db.migrator.status()
            #expect(status.inFlight.map(\.name) == ["01_products", "02_orders"])
            #expect(status.inFlight.map(\.status) == [.active, .active])
            #expect(try await db.migrator.latest() == b)

            // Only the newest rolls back; starting it again gives the same version.
            try await db.migrator.rollback()
            #expect(try await db.migrator.status().inFlight.map(\.name) == ["01_products"])
            #expect(try await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders' AND column_name LIKE '\\_baton%'") == ["0"])
            _ = try await db.start(Self.second)

            // The oldest completes first; 02 keeps working through the renamed columns.
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM products WHERE title IS NOT NULL AND sku IS NOT NULL", as: b) == ["303"])
            try await db.execute("INSERT INTO products (title, sku) VALUES ('after', 'sku-after')", as: b)
            try await db.execute("INSERT INTO orders (product_id, qty) VALUES (1009, 5)", as: a)
            #expect(try await db.query("SELECT total FROM orders WHERE product_id = 1009", as: b) == ["50"])
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM pg_namespace WHERE nspname = \(SQL.literal(a))") == ["0"])
            #expect(try await db.query("SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products'") == ["id,title,sku"])
            // The rollback dropped 02's total column; its second start computed every row again.
            #expect(try await db.query("SELECT count(*) FROM orders WHERE total = qty * 10") == ["304"])
            #expect(try await db.migrator.status().history.map(\.name) == ["01_products", "02_orders"])
        }
    }

    /// 01's backfill runs (slowly) in its own process; 02 starts and backfills meanwhile, but
    /// becomes active (usable) only once 01 is, since its version reads 01's columns; 01 can
    /// neither complete nor roll back under its running backfill.
    @Test func aLongBackfillBlocksNoOtherMigration() async throws {
        try await MigrationDatabase.with(Self.setup + "INSERT INTO products (name) SELECT 'q' || g FROM generate_series(1, 3000) g;") { db in
            let other = try await PostgresSession.connect(url: db.url)
            let backfill = Task {
                try await Migrator(session: other).start(
                    try Migration.parse(Self.first, file: "01.json"), options: .init(batchSize: 100, delay: .milliseconds(40)))
            }
            do {
                #expect(try await eventually { try await db.migrator.status().inFlight.first?.status == .backfilling })
                let underBackfill = await #expect(throws: BatonError.self) { try await db.migrator.rollback() }
                #expect(underBackfill?.description == "the backfill of '01_products' is running in another baton migrate")
                _ = try await db.start(Self.second)
                let status = try await db.migrator.status()
                #expect(status.inFlight.map(\.status) == [.backfilling, .backfilling], "02 waits for 01 to be active")
                #expect(try await db.migrator.latest() == "public")
                let early = await #expect(throws: BatonError.self) { try await db.migrator.complete() }
                #expect(early?.description.contains("the backfill of '01_products' has not finished") == true)
                try await backfill.value
                #expect(try await db.migrator.status().inFlight.map(\.status) == [.active, .active], "01's activation made 02 active too")
                #expect(try await db.migrator.latest() == "public_02_orders")
            } catch {
                backfill.cancel()
                _ = try? await backfill.value
                await other.close()
                throw error
            }
            await other.close()
            #expect(try await db.query("SELECT count(*) FROM products WHERE sku = 'sku-' || id", as: "public_01_products") == ["3300"])
            try await db.migrator.complete()
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM orders WHERE total = qty * 10") == ["300"])
        }
    }

    /// complete refuses while a session says it uses the old version; --force overrides.
    @Test func completeRefusesWhileTheOldVersionIsInUse() async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            _ = try await db.start(Self.first)
            let old = try await PostgresSession.connect(url: db.url)
            try await old.execute("SET application_name = 'baton:public/web1'")
            let refused = await #expect(throws: BatonError.self) { try await db.migrator.complete() }
            #expect(refused?.description == "the old version public is still in use by baton:public/web1 (1); upgrade those servers first, or pass --force")
            try await old.execute("SET application_name = 'baton:public_01_products/web1'")
            try await db.migrator.complete()
            _ = try await db.start(Self.second)
            let stillOld = await #expect(throws: BatonError.self) { try await db.migrator.complete() }
            #expect(stillOld?.description.contains("public_01_products is still in use") == true)
            try await db.migrator.complete(force: true)
            await old.close()
            #expect(try await db.migrator.status().inFlight.isEmpty)
        }
    }
}
