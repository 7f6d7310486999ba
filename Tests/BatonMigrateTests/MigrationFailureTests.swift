import BatonCore
import BatonMigrate
import Foundation
import Testing

/// Bad migrations: a clear one-line error, and the database exactly as it was.
@Suite(.serialized, .postgres) struct MigrationFailureTests {
    static let setup = """
        CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, n int);
        CREATE INDEX products_name_n ON products (name, n);
        INSERT INTO products (name, n) SELECT 'p' || g, g FROM generate_series(1, 100) g;
        INSERT INTO products (name, n) VALUES ('p1', 0);
        """

    @Test(arguments: [
        (#"{"add_column": {"table": "nope", "column": {"name": "x", "type": "int", "nullable": true}}}"#,
         "test.json: operations[0].add_column.table: no table 'nope' in schema 'public'"),
        (#"{"alter_column": {"table": "products", "column": "nme", "nullable": false}}"#,
         "test.json: operations[0].alter_column.column: no column 'nme' in table 'products' (did you mean 'name'?)"),
        (#"{"create_index": {"name": "i", "table": "products", "columns": ["id", "price"]}}"#,
         "test.json: operations[0].create_index.columns: no column 'price' in table 'products'"),
        (#"{"rename_column": {"table": "products", "from": "n", "to": "name"}}"#,
         "test.json: operations[0].rename_column.to: table 'products' already has a column 'name'"),
        (#"{"drop_index": {"name": "products_pkey"}}"#,
         "test.json: operations[0].drop_index.name: no index 'products_pkey' in schema 'public' (a constraint's index goes with the constraint)"),
        (#"{"add_column": {"table": "products", "column": {"name": "c", "type": "int"}}}"#,
         "test.json: operations[0].add_column.column: a NOT NULL column without a default needs 'up' to fill existing rows"),
        (#"{"create_constraint": {"table": "products", "name": "p2", "type": "primary_key", "columns": ["n"], "up": {}, "down": {}}}"#,
         "test.json: operations[0].create_constraint.type: table 'products' already has primary key 'products_pkey'; drop it first (drop_multicolumn_constraint)"),
        (#"{"drop_constraint": {"table": "products", "name": "products_pkey", "up": "id", "down": "id"}}"#,
         "test.json: operations[0].drop_constraint.name: table 'products' has no check, foreign key or unique constraint 'products_pkey'"),
        (#"{"set_replica_identity": {"table": "products", "identity": {"type": "index", "index": "nope"}}}"#,
         "test.json: operations[0].set_replica_identity.identity.index: table 'products' has no index 'nope'"),
        (#"{"create_constraint": {"table": "products", "name": "u", "type": "unique", "columns": ["name"], "up": {}, "down": {}}}, {"alter_column": {"table": "products", "column": "n", "nullable": false, "up": "coalesce(n, 0)"}}"#,
         "test.json: operations[1].alter_column.column: 'products_name_n' covers columns that operations[0] also moves to shadow columns; change them in one operation or in separate migrations"),
        (#"{"alter_column": {"table": "products", "column": "id", "type": "bigint"}}"#,
         "test.json: operations[0].alter_column.column: column 'id' is part of primary key 'products_pkey', which cannot move to a shadow column; change it in its own steps (sql operations) instead"),
    ])
    func referencesAreCheckedAgainstTheDatabase(operation: String, message: String) async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let before = try db.dump()
            let error = await #expect(throws: BatonError.self) { _ = try await db.start(#"{"name": "01_bad", "operations": [\#(operation)]}"#) }
            #expect(error?.description == message)
            #expect(try db.dump() == before)
        }
    }

    /// Names may be as long as PostgreSQL allows the version schema's to be: SCHEMA_NAME in 63 bytes.
    @Test func aNameIsAsLongAsTheVersionSchemaMayBe() async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let longest = String(repeating: "n", count: 63 - "public_".count)
            let migration = try await db.start(#"{"name": "\#(longest)", "operations": [{"sql": {"up": "SELECT 1"}}]}"#)
            #expect(try await db.query("SELECT count(*) FROM products", as: db.version(migration)).count == 1)
            try await db.migrator.rollback()
            let before = try db.dump()
            let error = await #expect(throws: BatonError.self) {
                _ = try await db.start(#"{"name": "\#(longest)x", "operations": [{"sql": {"up": "SELECT 1"}}]}"#)
            }
            #expect(error?.description == "test.json: name: '\(longest)x' is too long for schema public: its version schema public_\(longest)x would exceed PostgreSQL's 63-byte identifier limit (at most 56 bytes here)")
            #expect(try db.dump() == before)
        }
    }

    @Test func oneColumnChangesOncePerMigration() async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let error = await #expect(throws: BatonError.self) {
                _ = try await db.start("""
                    {"name": "01_twice", "operations": [{"rename_column": {"table": "products", "from": "n", "to": "m"}},
                      {"alter_column": {"table": "products", "column": "m", "type": "bigint"}}]}
                    """)
            }
            #expect(error?.description == "test.json: operations[1].alter_column.column: column 'n' is already changed by operations[0]; change it once per migration and put the rest in the next one")
        }
    }

    /// Failures at each stage of start: the transaction, a CONCURRENTLY index, the backfill.
    @Test(arguments: [
        ("transaction", #"{"add_column": {"table": "products", "column": {"name": "x", "type": "int", "nullable": true}}}, {"sql": {"up": "SELECT 1/0"}}"#, "division by zero"),
        ("index", #"{"create_index": {"name": "one_name", "table": "products", "columns": ["name"], "unique": true}}"#, "could not create unique index"),
        ("backfill", #"{"add_column": {"table": "products", "up": "100 / n", "column": {"name": "inverse", "type": "int"}}}"#, "division by zero"),
    ])
    func failedStartLeavesTheDatabaseAsItWas(stage: String, operations: String, reason: String) async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let before = try db.dump()
            let error = await #expect(throws: BatonError.self) { _ = try await db.start(#"{"name": "01_fails", "operations": [\#(operations)]}"#) }
            #expect(error?.description.contains(reason) == true, "\(stage): \(error?.description ?? "")")
            #expect(error?.description.contains("rolled back") == true || stage == "transaction")
            #expect(try db.dump() == before, "\(stage)")
            #expect(try await db.migrator.status().inFlight.isEmpty)
        }
    }

    @Test func hostileNamesAreQuoted() async throws {
        try await MigrationDatabase.with(#"""
            CREATE TABLE "order" (id serial PRIMARY KEY, "select" text, "a;b" int, "Mixed Case" text);
            INSERT INTO "order" ("select", "a;b") VALUES ('x', 1), ('y', 2);
            """#) { db in
            let migration = try await db.start(#"""
                {"name": "01_hostile", "operations": [
                  {"rename_column": {"table": "order", "from": "select", "to": "where\"; DROP TABLE x; --"}},
                  {"add_column": {"table": "order", "up": "coalesce(\"a;b\", 0) * 2", "column": {"name": "from", "type": "int", "nullable": false, "check": {"name": "from'check", "constraint": "\"from\" >= 0"}}}},
                  {"alter_column": {"table": "order", "column": "Mixed Case", "nullable": false, "up": "coalesce(\"Mixed Case\", 'none')"}},
                  {"create_index": {"name": "index;\"x", "table": "order", "columns": ["a;b"]}}]}
                """#)
            let new = db.version(migration)
            #expect(try await db.query(#"SELECT "where""; DROP TABLE x; --", "from", "Mixed Case" FROM "order" ORDER BY id"#, as: new) == ["x|2|none", "y|4|none"])
            try await db.execute(#"INSERT INTO "order" ("select", "a;b") VALUES ('z', 5)"#)
            #expect(try await db.query(#"SELECT "from" FROM "order" WHERE "a;b" = 5"#, as: new) == ["10"])
            try await db.migrator.rollback()
            _ = try await db.start(#"{"name": "01_hostile", "operations": [{"rename_column": {"table": "order", "from": "select", "to": "where\"; DROP TABLE x; --"}}]}"#)
            try await db.migrator.complete()
            #expect(try await db.query(#"SELECT count(*) FROM "order" WHERE "where""; DROP TABLE x; --" IS NOT NULL"#) == ["3"])
        }
    }

    /// The second migration's old version is the first one's schema, dropped when it completes.
    @Test func versionsChain() async throws {
        try await MigrationDatabase.with(Self.setup) { db in
            let first = try await db.start(#"{"name": "01_title", "operations": [{"rename_column": {"table": "products", "from": "name", "to": "title"}}]}"#)
            try await db.migrator.complete()
            let second = try await db.start(#"{"name": "02_label", "operations": [{"rename_column": {"table": "products", "from": "title", "to": "label"}}]}"#)
            try await db.execute("INSERT INTO products (title) VALUES ('via first')", as: db.version(first))
            #expect(try await db.query("SELECT count(*) FROM products WHERE label = 'via first'", as: db.version(second)) == ["1"])
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_01_title'") == ["0"])
            #expect(try await db.migrator.latest() == "public_02_label")
            #expect(try await db.migrator.status().history.map(\.name) == ["01_title", "02_label"])
        }
    }
}
