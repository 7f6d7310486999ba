import BatonCore
import BatonMigrate
import Foundation
import Testing

/// Every operation against a real PostgreSQL, as pgroll's suite does: start → both versions
/// checked → rollback (the database is exactly as before) → start → complete → final check.
/// Writes through each version during the migration must be visible and right through the other.
@Suite(.serialized, .postgres) struct OperationLifecycleTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var setup: String
        var migration: String
        /// With both versions live: `old` and `new` are their search_paths.
        var during: @Sendable (MigrationDatabase, _ old: String, _ new: String) async throws -> Void
        var after: @Sendable (MigrationDatabase, _ new: String) async throws -> Void
        var testDescription: String { name }
    }

    static let products = """
        CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price text, sku text, shelf int, stock int, CONSTRAINT sku_shelf UNIQUE (sku, shelf));
        CREATE INDEX products_name ON products (name);
        INSERT INTO products (name, price, sku, shelf, stock) SELECT 'p' || g, (g * 10)::text, 's' || g, g, g FROM generate_series(1, 50) g;
        CREATE TABLE legacy (id int);
        """

    static let cases: [Case] = [
        Case(
            name: "create_table",
            setup: products,
            migration: """
                {"name": "01_reviews", "operations": [{"create_table": {"name": "reviews", "columns": [
                  {"name": "id", "type": "serial", "pk": true},
                  {"name": "product_id", "type": "int", "references": {"name": "fk_product", "table": "products", "column": "id"}},
                  {"name": "body", "type": "text", "check": {"name": "body_length", "constraint": "length(body) > 0"}},
                  {"name": "score", "type": "int", "default": "3"}]}}]}
                """,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO reviews (product_id, body) VALUES (1, 'good')", as: new)
                #expect(try await db.query("SELECT product_id, body, score FROM reviews", as: new) == ["1|good|3"])
                await #expect(throws: (any Error).self) { try await db.execute("INSERT INTO reviews (product_id, body) VALUES (1, '')", as: new) }
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT count(*) FROM reviews", as: new) == ["1"])
            }),
        Case(
            name: "add_column",
            setup: products,
            migration: """
                {"name": "02_description", "operations": [{"add_column": {"table": "products", "up": "'about ' || name",
                  "column": {"name": "description", "type": "text", "nullable": false}}}]}
                """,
            during: { db, old, new async throws in
                #expect(try await db.query("SELECT description FROM products WHERE id = 2", as: new) == ["about p2"])
                try await db.execute("INSERT INTO products (name) VALUES ('from old')", as: old)
                #expect(try await db.query("SELECT description FROM products WHERE name = 'from old'", as: new) == ["about from old"])
                try await db.execute("UPDATE products SET name = 'renamed' WHERE id = 3", as: old)
                #expect(try await db.query("SELECT description FROM products WHERE id = 3", as: new) == ["about renamed"])
                try await db.execute("INSERT INTO products (name, description) VALUES ('from new', 'mine')", as: new)
                #expect(try await db.query("SELECT description FROM products WHERE name = 'from new'", as: new) == ["mine"])
                #expect(try await db.query("SELECT count(*) FROM products WHERE name = 'from new'", as: old) == ["1"])
                await #expect(throws: (any Error).self) { try await db.execute("INSERT INTO products (name, description) VALUES ('x', NULL)", as: new) }
                await #expect(throws: (any Error).self) { try await db.execute("SELECT description FROM products", as: old) }
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'description'") == ["NO"])
                #expect(try await db.query("SELECT count(*) FROM products WHERE description IS NULL", as: new) == ["0"])
            }),
        Case(
            name: "alter_column",
            setup: products,
            migration: """
                {"name": "03_price", "operations": [{"alter_column": {"table": "products", "column": "price", "type": "integer", "nullable": false,
                  "up": "coalesce(nullif(price, '')::integer, 0)", "down": "price::text"}}]}
                """,
            during: { db, old, new async throws in
                #expect(try await db.query("SELECT price + 1 FROM products WHERE id = 4", as: new) == ["41"])
                try await db.execute("INSERT INTO products (name, price) VALUES ('old', NULL)", as: old)
                #expect(try await db.query("SELECT price FROM products WHERE name = 'old'", as: new) == ["0"])
                try await db.execute("INSERT INTO products (name, price) VALUES ('new', 77)", as: new)
                #expect(try await db.query("SELECT price FROM products WHERE name = 'new'", as: old) == ["77"])
                try await db.execute("UPDATE products SET price = 5 WHERE id = 1", as: new)
                #expect(try await db.query("SELECT price FROM products WHERE id = 1", as: old) == ["5"])
                #expect(try await db.query("SELECT pg_typeof(price)::text FROM products LIMIT 1", as: old) == ["text"])
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT data_type, is_nullable FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'price'") == ["integer|NO"])
                #expect(try await db.query("SELECT price FROM products WHERE id = 1", as: new) == ["5"])
            }),
        Case(
            name: "alter_column with name (older pgroll files rename this way)",
            setup: products,
            migration: """
                {"name": "03_cost", "operations": [{"alter_column": {"table": "products", "column": "price", "name": "cost", "type": "integer",
                  "up": "nullif(price, '')::integer", "down": "cost::text"}}]}
                """,
            during: { db, old, new async throws in
                #expect(try await db.query("SELECT cost FROM products WHERE id = 4", as: new) == ["40"])
                try await db.execute("INSERT INTO products (name, cost) VALUES ('new', 9)", as: new)
                #expect(try await db.query("SELECT price FROM products WHERE name = 'new'", as: old) == ["9"])
                try await db.execute("UPDATE products SET price = '12' WHERE id = 1", as: old)
                #expect(try await db.query("SELECT cost FROM products WHERE id = 1", as: new) == ["12"])
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'cost'") == ["integer"])
                #expect(try await db.query("SELECT cost FROM products WHERE id = 1", as: new) == ["12"])
            }),
        Case(
            name: "alter_column keeps the column's indexes and constraints",
            setup: products + """
                CREATE INDEX products_double_shelf ON products ((shelf * 2)) WHERE shelf > 0;
                ALTER TABLE products ADD CONSTRAINT shelf_positive CHECK (shelf >= 0);
                CREATE TABLE shelves (id bigint PRIMARY KEY);
                INSERT INTO shelves SELECT g FROM generate_series(0, 60) g;
                ALTER TABLE products ADD CONSTRAINT shelf_exists FOREIGN KEY (shelf) REFERENCES shelves (id);
                """,
            migration: #"{"name": "03_shelf", "operations": [{"alter_column": {"table": "products", "column": "shelf", "type": "bigint", "up": "shelf", "down": "shelf::int"}}]}"#,
            during: { db, old, new async throws in
                await #expect(throws: (any Error).self, "the unique (sku, shelf) holds on the shadow") {
                    try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('dup', 's1', 1)", as: new)
                }
                await #expect(throws: (any Error).self, "the check holds on the shadow") {
                    try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('neg', 'x', -1)", as: new)
                }
                await #expect(throws: (any Error).self, "the foreign key holds on the shadow") {
                    try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('far', 'y', 99)", as: new)
                }
                try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('ok', 'z', 7)", as: new)
                #expect(try await db.query("SELECT shelf FROM products WHERE name = 'ok'", as: old) == ["7"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'products_double_shelf'")
                    == ["CREATE INDEX products_double_shelf ON public.products USING btree (((shelf * 2))) WHERE (shelf > 0)"])
                #expect(try await db.query("SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint WHERE conrelid = 'products'::regclass AND conname IN ('sku_shelf', 'shelf_positive', 'shelf_exists') ORDER BY 1")
                    == ["shelf_exists|FOREIGN KEY (shelf) REFERENCES shelves(id)|t", "shelf_positive|CHECK ((shelf >= 0))|t", "sku_shelf|UNIQUE (sku, shelf)|t"])
                #expect(try await db.query("SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'shelf'") == ["bigint"])
            }),
        Case(
            name: "alter_column on a serial column keeps its sequence",
            setup: "CREATE TABLE tickets (id int PRIMARY KEY, seq serial, note text); INSERT INTO tickets (id, note) VALUES (1, 'a'), (2, 'b');",
            migration: #"{"name": "03_seq", "operations": [{"alter_column": {"table": "tickets", "column": "seq", "type": "bigint", "up": "seq", "down": "seq::int"}}]}"#,
            during: { db, old, new async throws in
                // Both columns draw from the one sequence (gaps are fine); both versions agree.
                try await db.execute("INSERT INTO tickets (id, note) VALUES (3, 'new')", as: new)
                try await db.execute("INSERT INTO tickets (id, note) VALUES (5, 'old')", as: old)
                #expect(try await db.query("SELECT seq FROM tickets WHERE id IN (3, 5) ORDER BY id", as: old) == db.query("SELECT seq FROM tickets WHERE id IN (3, 5) ORDER BY id", as: new))
            },
            after: { db, new async throws in
                try await db.execute("INSERT INTO tickets (id, note) VALUES (4, 'after')", as: new)
                #expect(try await db.query("SELECT count(DISTINCT seq) FROM tickets WHERE seq IS NOT NULL", as: new) == ["5"], "every row has its own number")
                #expect(try await db.query("SELECT pg_get_serial_sequence('public.tickets', 'seq')") == ["public.tickets_seq_seq"])
            }),
        Case(
            name: "rename_column",
            setup: products,
            migration: #"{"name": "04_title", "operations": [{"rename_column": {"table": "products", "from": "name", "to": "title"}}]}"#,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO products (title) VALUES ('new')", as: new)
                #expect(try await db.query("SELECT count(*) FROM products WHERE name = 'new'", as: old) == ["1"])
                try await db.execute("INSERT INTO products (name) VALUES ('old')", as: old)
                #expect(try await db.query("SELECT count(*) FROM products WHERE title = 'old'", as: new) == ["1"])
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT count(*) FROM products WHERE title = 'old'", as: new) == ["1"])
                #expect(try await db.query("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'title'") == ["1"])
            }),
        Case(
            name: "drop_column",
            setup: products,
            migration: #"{"name": "05_no_price", "operations": [{"drop_column": {"table": "products", "column": "price", "down": "'0'"}}]}"#,
            during: { db, old, new async throws in
                await #expect(throws: (any Error).self) { try await db.execute("SELECT price FROM products", as: new) }
                try await db.execute("INSERT INTO products (name) VALUES ('new')", as: new)
                #expect(try await db.query("SELECT price FROM products WHERE name = 'new'", as: old) == ["0"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'products' AND column_name = 'price'") == ["0"])
            }),
        Case(
            name: "rename_table",
            setup: products,
            migration: #"{"name": "06_items", "operations": [{"rename_table": {"from": "products", "to": "items"}}]}"#,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO items (name) VALUES ('new')", as: new)
                #expect(try await db.query("SELECT count(*) FROM products WHERE name = 'new'", as: old) == ["1"])
                await #expect(throws: (any Error).self) { try await db.execute("SELECT 1 FROM products", as: new) }
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT count(*) FROM items", as: new) == ["51"])
                #expect(try await db.query("SELECT to_regclass('public.items') IS NOT NULL") == ["t"])
            }),
        Case(
            name: "drop_table",
            setup: products,
            migration: #"{"name": "07_no_legacy", "operations": [{"drop_table": {"name": "legacy"}}]}"#,
            during: { db, old, new async throws in
                await #expect(throws: (any Error).self) { try await db.execute("SELECT 1 FROM legacy", as: new) }
                try await db.execute("INSERT INTO legacy VALUES (1)", as: old)
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT to_regclass('public.legacy') IS NULL") == ["t"])
            }),
        Case(
            name: "create_index",
            setup: products,
            migration: #"{"name": "08_sku", "operations": [{"create_index": {"name": "products_sku", "table": "products", "columns": ["sku"], "unique": true, "predicate": "shelf > 0"}}]}"#,
            during: { db, _, _ async throws in
                #expect(try await db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.products_sku'::regclass") == ["t"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT indexdef LIKE '%UNIQUE%WHERE (shelf > 0)%' FROM pg_indexes WHERE indexname = 'products_sku'") == ["t"])
            }),
        Case(
            name: "drop_index",
            setup: products,
            migration: #"{"name": "09_no_name_index", "operations": [{"drop_index": {"name": "products_name"}}]}"#,
            during: { db, _, _ async throws in
                #expect(try await db.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'products_name'") == ["1"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'products_name'") == ["0"])
            }),
        Case(
            name: "create_constraint",
            setup: products,
            migration: """
                {"name": "10_stock_range", "operations": [{"create_constraint": {"table": "products", "name": "stock_range", "type": "check",
                  "columns": ["stock"], "check": "stock BETWEEN 1 AND 40", "up": {"stock": "least(greatest(stock, 1), 40)"}, "down": {"stock": "stock"}}}]}
                """,
            during: { db, old, new async throws in
                #expect(try await db.query("SELECT stock FROM products WHERE id = 45", as: new) == ["40"])
                #expect(try await db.query("SELECT stock FROM products WHERE id = 45", as: old) == ["45"])
                try await db.execute("INSERT INTO products (name, stock) VALUES ('old', 99)", as: old)
                #expect(try await db.query("SELECT stock FROM products WHERE name = 'old'", as: new) == ["40"])
                await #expect(throws: (any Error).self) { try await db.execute("INSERT INTO products (name, stock) VALUES ('new', 99)", as: new) }
                try await db.execute("INSERT INTO products (name, stock) VALUES ('new', 7)", as: new)
                #expect(try await db.query("SELECT stock FROM products WHERE name = 'new'", as: old) == ["7"])
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT convalidated FROM pg_constraint WHERE conname = 'stock_range'") == ["t"])
                #expect(try await db.query("SELECT max(stock) FROM products", as: new) == ["40"])
            }),
        Case(
            name: "drop_multicolumn_constraint",
            setup: products,
            migration: """
                {"name": "11_no_sku_shelf", "operations": [{"drop_multicolumn_constraint": {"table": "products", "name": "sku_shelf",
                  "up": {"sku": "sku", "shelf": "shelf"}, "down": {"sku": "sku", "shelf": "shelf"}}}]}
                """,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('old', 'x', 1)", as: old)
                #expect(try await db.query("SELECT sku, shelf FROM products WHERE name = 'old'", as: new) == ["x|1"])
            },
            after: { db, new async throws in
                try await db.execute("INSERT INTO products (name, sku, shelf) VALUES ('dup', 'x', 1)", as: new)
                #expect(try await db.query("SELECT count(*) FROM pg_constraint WHERE conname = 'sku_shelf'") == ["0"])
            }),
        Case(
            name: "rename_constraint",
            setup: products,
            migration: #"{"name": "12_rename_key", "operations": [{"rename_constraint": {"table": "products", "from": "sku_shelf", "to": "sku_per_shelf"}}]}"#,
            during: { db, _, _ async throws in
                #expect(try await db.query("SELECT count(*) FROM pg_constraint WHERE conname = 'sku_shelf'") == ["1"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT count(*) FROM pg_constraint WHERE conname = 'sku_per_shelf'") == ["1"])
            }),
        Case(
            name: "sql",
            setup: products,
            migration: """
                {"name": "13_sql", "operations": [
                  {"sql": {"up": "CREATE TABLE audit (id int, note text); CREATE INDEX audit_id ON audit (id)", "down": "DROP TABLE audit"}},
                  {"sql": {"up": "INSERT INTO audit VALUES (1, 'completed')", "onComplete": true}}]}
                """,
            during: { db, _, new async throws in
                #expect(try await db.query("SELECT count(*) FROM audit", as: new) == ["0"])
            },
            after: { db, new async throws in
                #expect(try await db.query("SELECT note FROM audit", as: new) == ["completed"])
            }),
    ]

    @Test(arguments: cases)
    func startRollbackStartComplete(_ test: Case) async throws {
        try await MigrationDatabase.with(test.setup) { db in try await lifecycle(test, db) }
    }

    func lifecycle(_ test: Case, _ db: MigrationDatabase) async throws {
        let before = try db.dump()

        let migration = try await db.start(test.migration)
        let new = db.version(migration)
        #expect(try await db.migrator.latest() == new)
        #expect(try await db.migrator.status().inFlight.last?.status == .active)
        try await db.migrator.rollback()
        let after = try db.dump()
        if after != before {
            try before.write(toFile: "/tmp/before-\(test.name).sql", atomically: true, encoding: .utf8)
            try after.write(toFile: "/tmp/after-\(test.name).sql", atomically: true, encoding: .utf8)
        }
        #expect(after == before, "rollback left the database as before")
        #expect(try await db.migrator.latest() == "public")

        _ = try await db.start(test.migration)
        try await test.during(db, "public", new)
        try await db.migrator.complete()
        #expect(try await db.migrator.status().inFlight.isEmpty)
        try await test.after(db, new)
        // Nothing of Baton's machinery is left on the tables.
        #expect(try await db.query("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND NOT t.tgisinternal") == ["0"])
        #expect(try await db.query("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND column_name LIKE '\\_baton%'") == ["0"])
    }
}
