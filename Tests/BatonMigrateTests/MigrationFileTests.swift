import BatonCore
import BatonMigrate
import Testing

@Suite struct MigrationFileTests {
    /// Every operation, in pgroll's JSON.
    let everything = """
        {
          "name": "05_everything",
          "operations": [
            {"create_table": {"name": "reviews", "columns": [
              {"name": "id", "type": "serial", "pk": true},
              {"name": "username", "type": "text", "unique": true, "check": {"name": "username_length", "constraint": "length(username) > 2"}},
              {"name": "product_id", "type": "int", "references": {"name": "fk_product", "table": "products", "column": "id", "on_delete": "CASCADE"}},
              {"name": "score", "type": "int", "default": "0", "comment": "1-5"},
              {"name": "total", "type": "int", "generated": {"expression": "score * 2"}}
            ], "constraints": [{"name": "one_per_user", "type": "unique", "columns": ["username", "product_id"]}]}},
            {"add_column": {"table": "reviews", "up": "'none'", "column": {"name": "body", "type": "text", "nullable": false}}},
            {"alter_column": {"table": "reviews", "column": "score", "type": "bigint", "nullable": false, "default": null, "up": "coalesce(score, 0)", "down": "score"}},
            {"rename_column": {"table": "reviews", "from": "body", "to": "review"}},
            {"drop_column": {"table": "reviews", "column": "total", "down": "score * 2"}},
            {"rename_table": {"from": "reviews", "to": "product_reviews"}},
            {"create_index": {"name": "idx_score", "table": "product_reviews", "columns": ["score"], "method": "btree", "unique": false, "predicate": "score > 0"}},
            {"create_index": {"name": "idx_user", "table": "product_reviews", "columns": [{"column": "username"}]}},
            {"create_index": {"name": "idx_old_map", "table": "product_reviews", "columns": {"review": {}}}},
            {"drop_index": {"name": "idx_old_map"}},
            {"create_constraint": {"table": "product_reviews", "name": "score_range", "type": "check", "columns": ["score"], "check": "score between 0 and 5", "up": {"score": "least(greatest(score, 0), 5)"}, "down": {"score": "score"}}},
            {"drop_multicolumn_constraint": {"table": "product_reviews", "name": "one_per_user", "up": {"username": "username"}, "down": {"username": "username"}}},
            {"rename_constraint": {"table": "product_reviews", "from": "score_range", "to": "score_between"}},
            {"sql": {"up": "create view top as select * from product_reviews where score = 5", "down": "drop view top"}},
            {"sql": {"up": "analyze product_reviews", "onComplete": true}},
            {"drop_table": {"name": "legacy"}}
          ]
        }
        """

    @Test func everyOperationParses() throws {
        let migration = try Migration.parse(everything, file: "05_everything.json")
        #expect(migration.name == "05_everything")
        #expect(migration.operations.count == 16)
        guard case .createTable(let table) = migration.operations[0] else { Issue.record("not create_table"); return }
        #expect(table.columns.map(\.name) == ["id", "username", "product_id", "score", "total"])
        #expect(table.columns[0].pk && !table.columns[0].nullable)
        #expect(table.columns[2].references?.onDelete == "CASCADE")
        #expect(table.columns[4].generated == .expression("score * 2"))
        #expect(table.constraints.first?.columns == ["username", "product_id"])
        guard case .alterColumn(let alter) = migration.operations[2] else { Issue.record("not alter_column"); return }
        #expect(alter.type == "bigint")
        #expect(alter.defaultValue == .some(nil), "default: null drops the default")
        guard case .createIndex(let index) = migration.operations[8] else { Issue.record("not create_index"); return }
        #expect(index.fields.map(\.column) == ["review"])
        guard case .sql(let onComplete) = migration.operations[14] else { Issue.record("not sql"); return }
        #expect(onComplete.onComplete)
    }

    @Test func yamlWorksToo() throws {
        let yaml = """
            operations:
              - rename_column:
                  table: translations
                  from: text
                  to: target_text
              - add_column:
                  table: translations
                  up: "length(target_text)"
                  column: { name: text_length, type: int, nullable: false }
            """
        let migration = try Migration.parse(yaml, file: "02_rename.yaml", defaultName: "02_rename")
        #expect(migration.name == "02_rename")
        #expect(migration.operations.count == 2)
    }

    @Test(arguments: [
        (#"{"name": "x", "operations": [{"add_colum": {"table": "t"}}]}"#,
         "m.json:1: operations[0].add_colum: unknown operation; expected one of create_table, add_column, alter_column, rename_column, drop_column, rename_table, drop_table, create_index, drop_index, create_constraint, drop_multicolumn_constraint, rename_constraint, drop_constraint, set_replica_identity, sql"),
        (#"{"name": "x", "operations": [{"add_column": {"table": "t", "column": {"name": "c", "type": "int", "nulable": true}}}]}"#,
         "m.json:1: operations[0].add_column.column.nulable: unknown field; expected one of name, type, nullable, pk, unique, default, check, references, generated, comment"),
        (#"{"name": "x", "operations": [{"add_column": {"table": "t", "column": {"name": "c", "type": "int", "nullable": "maybe"}}}]}"#,
         "m.json:1: operations[0].add_column.column.nullable: expected true or false, got 'maybe'"),
        (#"{"name": "x", "operations": [{"drop_column": {"table": "t"}}]}"#,
         "m.json:1: operations[0].drop_column: missing 'column'"),
        (#"{"name": "x", "operations": [{"alter_column": {"table": "t", "column": "c", "name": "c"}}]}"#,
         "m.json:1: operations[0].alter_column.name: the new name is the old one"),
        (#"{"name": "x", "operations": [{"create_index": {"name": "i", "table": "t", "columns": ["a"], "method": "fast"}}]}"#,
         "m.json:1: operations[0].create_index.method: expected one of btree, hash, gist, spgist, gin, brin, got 'fast'"),
        (#"{"name": "x", "operations": [{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int"}], "constraints": [{"name": "u", "type": "unique", "columns": ["b"]}]}}]}"#,
         "m.json:1: operations[0].create_table.constraints[0].columns: no column 'b' in table 't'"),
        (#"{"name": "x"}"#, "m.json:1: (top level): missing 'operations': a list such as [{\"add_column\": {...}}]"),
        (#"{"name": "x", "operations": [{"sql": {"up": "select 1", "down": "select 2", "onComplete": true}}]}"#,
         "m.json:1: operations[0].sql.down: an onComplete operation cannot be rolled back, so it takes no 'down'"),
    ])
    func badFilesNameTheOperationAndField(text: String, expected: String) {
        do {
            _ = try Migration.parse(text, file: "m.json")
            Issue.record("expected: \(expected)")
        } catch let error as BatonError {
            #expect(error.message == expected)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

/// pgroll's reading of the file: `null` removes, names as long as PostgreSQL allows.
@Suite struct MigrationFileConformanceTests {
    @Test func nullRemovesAndAQuotedNullIsText() throws {
        let migration = try Migration.parse(
            #"{"name": "c", "operations": [{"alter_column": {"table": "t", "column": "a", "comment": null}}, {"alter_column": {"table": "t", "column": "b", "comment": "null"}}]}"#,
            file: "c.json"
        )
        guard case .alterColumn(let removed) = migration.operations[0], case .alterColumn(let text) = migration.operations[1] else {
            Issue.record("expected two alter_column operations")
            return
        }
        #expect(removed.comment == .some(nil))
        #expect(text.comment == .some("null"))
    }

    @Test func namesUpToPostgresLimitParse() throws {
        let long = String(repeating: "a", count: 62)
        #expect(try Migration.parse(#"{"name": "\#(long)", "operations": [{"sql": {"up": "select 1"}}]}"#, file: "m.json").name == long)
        let error = #expect(throws: BatonError.self) {
            try Migration.parse(#"{"name": "\#(long)b", "operations": [{"sql": {"up": "select 1"}}]}"#, file: "m.json")
        }
        #expect(error?.message == "m.json:1: name: '\(long)b' must be at most 62 letters, digits, '_', '-' or '.', since it names the version schema (or give version_schema)")
    }
}

extension MigrationFileConformanceTests {
    /// pgroll's columns are NOT NULL unless `nullable: true`, so the same file gives the same schema.
    @Test func columnsAreNotNullUnlessNullable() throws {
        let migration = try Migration.parse(
            #"{"name": "n", "operations": [{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int"}, {"name": "b", "type": "int", "nullable": true}]}}]}"#,
            file: "n.json"
        )
        guard case .createTable(let table) = migration.operations[0] else {
            Issue.record("expected create_table")
            return
        }
        #expect(table.columns.map(\.nullable) == [false, true])
    }
}

extension MigrationFileConformanceTests {
    /// What pgroll's schema forbids, or PostgreSQL cannot do, is refused at parse time with the field.
    @Test(arguments: [
        (#"{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int", "references": {"name": "f", "table": "u", "column": "id", "match_type": "PARTIAL"}}]}}"#,
         "c.json:1: operations[0].create_table.columns[0].references.match_type: expected one of SIMPLE, FULL, got 'PARTIAL' (PostgreSQL does not implement MATCH PARTIAL)"),
        (#"{"create_constraint": {"table": "t", "name": "x", "type": "exclude", "columns": ["a"], "up": {}, "down": {}}}"#,
         "c.json:1: operations[0].create_constraint.type: expected unique, check, foreign_key, primary_key, got 'exclude'"),
        (#"{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int"}], "constraints": [{"name": "c", "type": "check", "check": "a > 0", "deferrable": true}]}}"#,
         "c.json:1: operations[0].create_table.constraints[0].deferrable: a check constraint takes no deferrable"),
        (#"{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int", "pk": true}], "constraints": [{"name": "c", "type": "primary_key", "columns": ["a"]}]}}"#,
         "c.json:1: operations[0].create_table.constraints[0].type: the primary key is already given by the columns' pk; give it one way"),
        (#"{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int"}], "constraints": [{"name": "c", "type": "unique", "columns": ["a"], "index_parameters": {"include_columns": ["b"]}}]}}"#,
         "c.json:1: operations[0].create_table.constraints[0].index_parameters.include_columns: no column 'b' in table 't'"),
        (#"{"create_table": {"name": "t", "columns": [{"name": "a", "type": "int", "references": {"name": "f", "table": "u", "column": "id", "initially_deferred": true}}]}}"#,
         "c.json:1: operations[0].create_table.columns[0].references.initially_deferred: needs deferrable: true"),
        (#"{"create_index": {"name": "i", "table": "t", "columns": [{"column": "a", "sort": "UP"}]}}"#,
         "c.json:1: operations[0].create_index.columns[0].sort: expected ASC or DESC, got 'UP'"),
        (#"{"set_replica_identity": {"table": "t", "identity": {"type": "index"}}}"#,
         "c.json:1: operations[0].set_replica_identity.identity.index: type index needs the index's name"),
        (#"{"drop_constraint": {"table": "t", "name": "c", "up": "a"}}"#,
         "c.json:1: operations[0].drop_constraint.down: expected the SQL that fills the constrained column when the new version writes"),
    ])
    func refusedWithTheField(operation: String, message: String) throws {
        let error = #expect(throws: BatonError.self) { try Migration.parse(#"{"name": "c", "operations": [\#(operation)]}"#, file: "c.json") }
        #expect(error?.message == message)
    }

    /// pgroll reads an empty expression as absent, a version_schema names the version, and
    /// `$schema` is allowed for editors.
    @Test func emptyExpressionsAreAbsent() throws {
        let migration = try Migration.parse(#"""
            {"$schema": "https://example.invalid/schema.json", "name": "a_long_file_name", "version_schema": "v2", "operations": [
              {"drop_column": {"table": "t", "column": "a", "down": ""}},
              {"create_index": {"name": "i", "table": "t", "columns": ["a"], "predicate": "", "storage_parameters": ""}}]}
            """#, file: "e.json")
        #expect(migration.versionSchema == "v2")
        guard case .dropColumn(let drop) = migration.operations[0], case .createIndex(let index) = migration.operations[1] else {
            Issue.record("expected drop_column and create_index")
            return
        }
        #expect(drop.down == nil)
        #expect(index.predicate == nil && index.storageParameters == nil)
    }
}
