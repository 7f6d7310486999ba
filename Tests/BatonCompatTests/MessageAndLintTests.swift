import BatonCompat
import BatonCore
import Foundation
import Testing

@Suite struct MessageSchemaCompatTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "baton-schema-\(UInt32.random(in: 0...UInt32.max)).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let pairs: [(String, String, String, Set<String>)] = [
        ("required field dropped by the producer",
         #"{"type": "object", "required": ["id", "total"], "properties": {"id": {"type": "string"}, "total": {"type": "integer"}}}"#,
         #"{"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}"#,
         ["forward message.required-property-missing ERR", "backward message.property-ignored WARN"]),
        ("field added as optional",
         #"{"type": "object", "properties": {"id": {"type": "string"}}}"#,
         #"{"type": "object", "properties": {"id": {"type": "string"}, "note": {"type": "string"}}}"#,
         ["backward message.property-not-sent INFO", "forward message.property-ignored WARN"]),
        ("enum value added, through $defs",
         ##"{"$defs": {"State": {"type": "string", "enum": ["new", "paid"]}}, "type": "object", "properties": {"state": {"$ref": "#/$defs/State"}}}"##,
         ##"{"$defs": {"State": {"type": "string", "enum": ["new", "paid", "refunded"]}}, "type": "object", "properties": {"state": {"$ref": "#/$defs/State"}}}"##,
         ["forward message.enum-value-not-accepted ERR", "backward message.enum-value-added INFO"]),
    ]

    @Test(arguments: pairs)
    func producerConsumerPairs(name: String, old: String, new: String, expected: Set<String>) throws {
        let (oldPath, newPath) = (try write(old), try write(new))
        defer { unlink(oldPath); unlink(newPath) }
        let findings = MessageSchemaCompat.compare(old: try OpenAPILoader.schema(path: oldPath), new: try OpenAPILoader.schema(path: newPath), name: "order")
        #expect(Set(findings.map { "\($0.direction.rawValue) \($0.id) \($0.level.rawValue)" }) == expected, "\(name)")
    }

    @Test func unresolvableReferenceIsOneLine() throws {
        let path = try write(##"{"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}}"##)
        defer { unlink(path) }
        let error = #expect(throws: BatonError.self) { _ = try OpenAPILoader.schema(path: path) }
        #expect(error?.description == "\(path): at /properties/a: $ref '#/$defs/Nope' points at nothing", "\(error?.description ?? "")")
    }
}

@Suite struct MigrationLintTests {
    @Test func everyUnsafeStepWithItsLine() {
        let sql = """
            -- a release's hand-written migration
            CREATE TABLE audit (id int, note text);
            CREATE INDEX audit_note ON audit (note);
            ALTER TABLE orders DROP COLUMN legacy;
            ALTER TABLE orders RENAME COLUMN total TO amount;
            ALTER TABLE orders RENAME TO purchases;
            DROP TABLE old_orders;
            ALTER TABLE orders ALTER COLUMN amount TYPE bigint;
            ALTER TABLE orders ALTER COLUMN customer SET NOT NULL;
            ALTER TABLE orders ADD COLUMN region text NOT NULL;
            ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();
            CREATE INDEX orders_customer ON orders (customer);
            DROP INDEX orders_old;
            ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);
            ALTER TABLE orders ADD CONSTRAINT one_per_customer UNIQUE (customer);
            VACUUM FULL orders;
            TRUNCATE sessions;
            /* safe ones */
            CREATE INDEX CONCURRENTLY orders_region ON orders (region);
            ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (customer) REFERENCES customers NOT VALID;
            ALTER TABLE orders ADD COLUMN flag boolean NOT NULL DEFAULT false;
            ALTER TABLE orders ALTER COLUMN note DROP DEFAULT;
            UPDATE orders SET note = 'a; b -- not a comment' WHERE id = 1;
            DO $$ BEGIN DROP TABLE IF EXISTS scratch; END $$;
            """
        let findings = MigrationLint.lint(sql: sql, place: "m.sql", firstLine: 1)
        #expect(findings.map { "\($0.operation) \($0.id) \($0.level.rawValue)" } == [
            "m.sql:4 drop-column ERR", "m.sql:5 rename-column ERR", "m.sql:6 rename-table ERR", "m.sql:7 drop-table ERR",
            "m.sql:8 change-type ERR", "m.sql:9 set-not-null WARN", "m.sql:10 add-column-not-null ERR", "m.sql:11 volatile-default WARN",
            "m.sql:12 create-index ERR", "m.sql:13 drop-index WARN", "m.sql:14 constraint-not-valid WARN", "m.sql:15 unique-constraint WARN",
            "m.sql:16 table-rewrite WARN", "m.sql:17 truncate ERR",
            "m.sql:24 drop-table ERR",  // inside a DO block, whose ';' did not split the statement
        ])
        #expect(findings.allSatisfy { !$0.message.isEmpty })
    }

    @Test func pgrollFilesAreLintedInTheirSQLOperations() throws {
        let path = NSTemporaryDirectory() + "baton-lint-\(UInt32.random(in: 0...UInt32.max)).json"
        try #"{"name": "07", "operations": [{"add_column": {"table": "t", "column": {"name": "c", "type": "int", "nullable": true}}}, {"sql": {"up": "CREATE INDEX i ON t (c)"}}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let findings = try MigrationLint.lint(path: path)
        #expect(findings.map { "\($0.operation) \($0.id)" } == ["\(path): operations[1].sql.up create-index"])
    }
}

@Suite struct CompatReportTests {
    let findings = [
        Finding(id: "operation-removed", level: .err, direction: .backward, operation: "GET /a", pointer: "/paths/~1a/get", message: "gone"),
        Finding(id: "operation-added", level: .warn, direction: .forward, operation: "GET /b", pointer: "/paths/~1b/get", message: "new"),
    ]

    @Test func verdictsAndFailOn() {
        #expect(CompatReport(kind: .api, title: "t", findings: findings).incompatible)
        #expect(CompatReport(kind: .api, title: "t", findings: findings).verdict.hasPrefix("backward-incompatible"))
        let warnOnly = Array(findings.dropFirst())
        #expect(!CompatReport(kind: .api, title: "t", findings: warnOnly).incompatible)
        #expect(CompatReport(kind: .api, title: "t", findings: warnOnly, failOn: .warn).verdict.hasPrefix("forward-incompatible: clients built for NEW break against OLD servers; roll out servers first"))
        #expect(CompatReport(kind: .api, title: "t", findings: []).verdict == "compatible both ways: roll out in any order")
    }

    @Test func ignoreFileNeedsReasonsAndScopes() throws {
        let path = NSTemporaryDirectory() + "baton-ignore-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        try "# accepted\noperation-removed GET /a  # nobody calls it since 5.1\noperation-added /paths/~1c  # other scope\n".write(toFile: path, atomically: true, encoding: .utf8)
        let report = CompatReport(kind: .api, title: "t", findings: findings, ignore: try IgnoreList.load(path: path))
        #expect(report.findings.map(\.id) == ["operation-added"])
        #expect(report.ignored.map(\.reason) == ["nobody calls it since 5.1"])
        #expect(!report.incompatible)
        try "operation-removed GET /a\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: BatonError.self) { _ = try IgnoreList.load(path: path) }
        #expect(error?.description == "\(path):1: give the reason after '#': ID [OPERATION or POINTER]  # why this is fine")
    }

    @Test func formats() throws {
        let report = CompatReport(kind: .api, title: "openapi a → b", findings: findings)
        let json = try JSONSerialization.jsonObject(with: Data(try report.json().utf8)) as? [String: Any]
        #expect(json?["compatible"] as? Bool == false)
        #expect((json?["findings"] as? [[String: Any]])?.count == 2)
        #expect(report.markdown().contains("| ERR | backward | `operation-removed` | GET /a | `/paths/~1a/get` | gone |"))
        let junit = report.junit()
        #expect(junit.contains(#"failures="1""#) && junit.contains(#"<failure type="ERR" message="gone"/>"#))
        #expect(report.text(color: false).contains("backward (client built for OLD → server running NEW): 1 finding"))
    }
}
