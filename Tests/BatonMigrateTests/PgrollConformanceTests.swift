import BatonCore
import BatonMigrate
import Foundation
import Testing

/// pgroll's options, each through start → rollback (dump identical) → start → complete, with the
/// catalog checked against what pgroll's files mean: constraint definitions, index definitions,
/// reloptions, replica identity, NOT NULL.
extension OperationLifecycleTests {
    static let conformance: [Case] = [
        Case(
            name: "create_table constraints and column options",
            setup: products,
            migration: #"""
                {"name": "10_orders", "operations": [{"create_table": {"name": "orders", "columns": [
                  {"name": "id", "type": "int", "generated": {"identity": {"user_specified_values": "BY DEFAULT", "sequence_options": "START WITH 100"}}},
                  {"name": "code", "type": "text"},
                  {"name": "region", "type": "text", "nullable": true},
                  {"name": "note", "type": "text", "nullable": true, "check": {"name": "note_short", "constraint": "length(note) < 100", "no_inherit": true}},
                  {"name": "product_id", "type": "int", "nullable": true, "references": {"name": "orders_product", "table": "products", "column": "id",
                    "on_delete": "SET NULL", "on_update": "CASCADE", "match_type": "FULL", "deferrable": true, "initially_deferred": true}},
                  {"name": "parent_id", "type": "int", "nullable": true}],
                  "constraints": [
                    {"name": "orders_pk", "type": "primary_key", "columns": ["id"], "index_parameters": {"storage_parameters": "fillfactor=80"}},
                    {"name": "orders_code", "type": "unique", "columns": ["code", "region"], "nulls_not_distinct": true,
                     "index_parameters": {"include_columns": ["note"]}, "deferrable": true},
                    {"name": "orders_parent", "type": "foreign_key", "columns": ["parent_id"], "deferrable": true,
                     "references": {"table": "orders", "columns": ["id"], "on_delete": "CASCADE"}},
                    {"name": "orders_region", "type": "check", "check": "region <> ''", "no_inherit": true},
                    {"name": "orders_one_code", "type": "exclude", "exclude": {"index_method": "btree", "elements": "code WITH =", "predicate": "region = 'solo'"}}]}}]}
                """#,
            during: { db, _, new async throws in
                try await db.execute("INSERT INTO orders (code) VALUES ('a')", as: new)
                #expect(try await db.query("SELECT id FROM orders", as: new) == ["100"], "identity START WITH 100")
                await #expect(throws: (any Error).self, "NULLS NOT DISTINCT") { try await db.execute("INSERT INTO orders (code) VALUES ('a')", as: new) }
                try await db.execute("INSERT INTO orders (code, region) VALUES ('s', 'solo')", as: new)
                await #expect(throws: (any Error).self, "the exclusion") { try await db.execute("INSERT INTO orders (code, region) VALUES ('s', 'solo')", as: new) }
            },
            after: { db, _ async throws in
                let definitions = try await db.query("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'orders'::regclass ORDER BY conname")
                #expect(definitions == [
                    "note_short|CHECK ((length(note) < 100)) NO INHERIT",
                    "orders_code|UNIQUE NULLS NOT DISTINCT (code, region) INCLUDE (note) DEFERRABLE",
                    "orders_one_code|EXCLUDE USING btree (code WITH =) WHERE ((region = 'solo'::text))",
                    "orders_parent|FOREIGN KEY (parent_id) REFERENCES orders(id) ON DELETE CASCADE DEFERRABLE",
                    "orders_pk|PRIMARY KEY (id)",
                    "orders_product|FOREIGN KEY (product_id) REFERENCES products(id) MATCH FULL ON UPDATE CASCADE ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED",
                    "orders_region|CHECK ((region <> ''::text)) NO INHERIT",
                ])
                #expect(try await db.query("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'orders_pk'") == ["fillfactor=80"])
                #expect(try await db.query("SELECT string_agg(attname || '=' || attnotnull, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attnum > 0")
                    == ["id=true,code=true,region=false,note=false,product_id=false,parent_id=false"])
            }),
        Case(
            name: "create_constraint kinds and options",
            setup: products + "CREATE TABLE tags (name text NOT NULL, owner int);",
            migration: #"""
                {"name": "11_constraints", "operations": [
                  {"create_constraint": {"table": "tags", "name": "tags_pk", "type": "primary_key", "columns": ["name"],
                    "up": {"name": "name"}, "down": {"name": "name"}}},
                  {"create_constraint": {"table": "products", "name": "products_name_stock", "type": "unique", "columns": ["name", "stock"],
                    "index_parameters": {"include_columns": ["id"], "storage_parameters": "fillfactor=70"},
                    "up": {"name": "name", "stock": "stock"}, "down": {"name": "name", "stock": "stock"}}},
                  {"create_constraint": {"table": "products", "name": "products_price", "type": "check", "columns": ["price"], "check": "price <> ''",
                    "no_inherit": true, "up": {"price": "nullif(price, '')"}, "down": {"price": "price"}}},
                  {"create_constraint": {"table": "products", "name": "products_shelf", "type": "foreign_key", "columns": ["shelf"],
                    "references": {"table": "products", "columns": ["id"], "on_delete": "SET NULL", "on_update": "RESTRICT"},
                    "up": {"shelf": "shelf"}, "down": {"shelf": "shelf"}}}]}
                """#,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO products (name, price) VALUES ('empty price', '')", as: old)
                #expect(try await db.query("SELECT price FROM products WHERE name = 'empty price'", as: new) == ["NULL"])
            },
            after: { db, _ async throws in
                let definitions = try await db.query("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid IN ('products'::regclass, 'tags'::regclass) AND conname LIKE ANY (ARRAY['tags_pk', 'products\\_%']) ORDER BY conname")
                #expect(definitions == [
                    "products_name_stock|UNIQUE (name, stock) INCLUDE (id)",
                    "products_pkey|PRIMARY KEY (id)",
                    "products_price|CHECK ((price <> ''::text)) NO INHERIT",
                    "products_shelf|FOREIGN KEY (shelf) REFERENCES products(id) ON UPDATE RESTRICT ON DELETE SET NULL",
                    "tags_pk|PRIMARY KEY (name)",
                ])
                #expect(try await db.query("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'products_name_stock'") == ["fillfactor=70"])
            }),
        Case(
            name: "create_index column options and storage parameters",
            setup: products,
            migration: #"""
                {"name": "12_index", "operations": [
                  {"create_index": {"name": "products_by_name", "table": "products", "storage_parameters": "fillfactor=70",
                    "columns": [{"column": "name", "collate": "C", "sort": "DESC", "nulls": "LAST"}, {"column": "sku", "opclass": {"name": "text_pattern_ops"}}]}},
                  {"create_index": {"name": "products_by_price", "table": "products", "method": "hash", "predicate": "",
                    "columns": {"price": {}}}}]}
                """#,
            during: { _, _, _ async throws in },
            after: { db, _ async throws in
                let definitions = try await db.query("SELECT indexdef FROM pg_indexes WHERE indexname IN ('products_by_name', 'products_by_price') ORDER BY indexname")
                #expect(definitions == [
                    #"CREATE INDEX products_by_name ON public.products USING btree (name COLLATE "C" DESC NULLS LAST, sku text_pattern_ops) WITH (fillfactor='70')"#,
                    "CREATE INDEX products_by_price ON public.products USING hash (price)",
                ])
            }),
        Case(
            name: "drop_constraint",
            setup: products + "ALTER TABLE products ADD CONSTRAINT name_length CHECK (length(name) > 1);",
            migration: #"""
                {"name": "13_drop_check", "operations": [{"drop_constraint": {"table": "products", "name": "name_length", "up": "name",
                  "down": "CASE WHEN length(name) <= 1 THEN name || '_' ELSE name END"}}]}
                """#,
            during: { db, old, new async throws in
                try await db.execute("INSERT INTO products (name) VALUES ('x')", as: new)
                #expect(try await db.query("SELECT count(*) FROM products WHERE name = 'x_'", as: old) == ["1"])
                await #expect(throws: (any Error).self) { try await db.execute("INSERT INTO products (name) VALUES ('y')", as: old) }
            },
            after: { db, new async throws in
                try await db.execute("INSERT INTO products (name) VALUES ('z')", as: new)
                #expect(try await db.query("SELECT count(*) FROM pg_constraint WHERE conname = 'name_length'") == ["0"])
            }),
        Case(
            name: "set_replica_identity",
            setup: products,
            migration: #"{"name": "14_identity", "operations": [{"set_replica_identity": {"table": "products", "identity": {"type": "full"}}}]}"#,
            during: { db, _, _ async throws in
                #expect(try await db.query("SELECT relreplident FROM pg_class WHERE oid = 'products'::regclass") == ["f"])
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT relreplident FROM pg_class WHERE oid = 'products'::regclass") == ["f"])
            }),
        Case(
            name: "set_replica_identity using an index",
            setup: products + "ALTER TABLE products REPLICA IDENTITY FULL; CREATE UNIQUE INDEX products_id_name ON products (id, name);",
            migration: #"{"name": "15_identity", "operations": [{"set_replica_identity": {"table": "products", "identity": {"type": "index", "index": "products_id_name"}}}]}"#,
            during: { _, _, _ async throws in },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT indisreplident FROM pg_index WHERE indexrelid = 'products_id_name'::regclass") == ["t"])
            }),
        Case(
            name: "version_schema and a primary key added to a new table",
            setup: products,
            migration: #"""
                {"name": "16_a_file_name_that_is_not_the_schema", "version_schema": "v16", "operations": [
                  {"create_table": {"name": "notes", "columns": [{"name": "body", "type": "text"}]}},
                  {"add_column": {"table": "notes", "column": {"name": "id", "type": "serial", "pk": true}}}]}
                """#,
            during: { db, _, new async throws in
                #expect(new == "public_v16")
                try await db.execute("INSERT INTO notes (body) VALUES ('hi')", as: new)
            },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'notes'::regclass AND contype = 'p'") == ["PRIMARY KEY (id)"])
            }),
        Case(
            name: "alter_column references with actions",
            setup: products + "CREATE TABLE reviews (id serial PRIMARY KEY, product_id int);",
            migration: #"""
                {"name": "17_reviews_fk", "operations": [{"alter_column": {"table": "reviews", "column": "product_id",
                  "references": {"name": "reviews_product", "table": "products", "column": "id", "on_delete": "CASCADE", "on_update": "NO ACTION"},
                  "up": "product_id", "down": "product_id"}}]}
                """#,
            during: { _, _, _ async throws in },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'reviews_product'") == ["FOREIGN KEY (product_id) REFERENCES products(id) ON DELETE CASCADE"])
            }),
        Case(
            name: "comments survive shadow columns and reach columns added to new tables",
            setup: products + "COMMENT ON COLUMN products.price IS 'in cents';",
            migration: #"""
                {"name": "18_comments", "operations": [
                  {"alter_column": {"table": "products", "column": "price", "type": "int", "up": "price::int", "down": "price::text"}},
                  {"create_table": {"name": "labels", "columns": [{"name": "id", "type": "int", "pk": true}]}},
                  {"add_column": {"table": "labels", "column": {"name": "text", "type": "text", "nullable": true, "comment": "shown to users"}}},
                  {"sql": {"up": "INSERT INTO labels (id) VALUES (1), (2)"}},
                  {"add_column": {"table": "labels", "up": "'label ' || id", "column": {"name": "title", "type": "text"}}}]}
                """#,
            during: { _, _, _ async throws in },
            after: { db, _ async throws in
                #expect(try await db.query("SELECT col_description('products'::regclass, attnum) FROM pg_attribute WHERE attrelid = 'products'::regclass AND attname = 'price'") == ["in cents"])
                #expect(try await db.query("SELECT col_description('labels'::regclass, attnum) FROM pg_attribute WHERE attrelid = 'labels'::regclass AND attname = 'text'") == ["shown to users"])
                #expect(try await db.query("SELECT title FROM labels ORDER BY id") == ["label 1", "label 2"])
                #expect(try await db.query("SELECT attnotnull FROM pg_attribute WHERE attrelid = 'labels'::regclass AND attname = 'title'") == ["t"])
            }),
    ]

    @Test(arguments: conformance)
    func pgrollOptionsReachTheCatalog(_ test: Case) async throws {
        try await MigrationDatabase.with(test.setup) { db in try await lifecycle(test, db) }
    }
}
