import BatonCore
import BatonMigrate
import Foundation
import Testing

/// `baton migrate` as a user runs it: a real process against a real database.
@Suite(.serialized, .postgres) struct MigrateCommandTests {
    func baton(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let (status, output) = try ChildProcess.run([try BuiltProducts.path("baton"), "migrate"] + arguments)
        return (status, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func planApplyStatusLatest() async throws {
        try await MigrationDatabase.with("CREATE TABLE notes (id serial PRIMARY KEY, body text); INSERT INTO notes (body) VALUES ('a'), ('bb');") { db in
            let directory = NSTemporaryDirectory() + "baton-migrations-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try #"{"operations": [{"add_column": {"table": "notes", "up": "length(body)", "column": {"name": "size", "type": "int", "nullable": false}}}]}"#
                .write(toFile: directory + "/01_size.json", atomically: true, encoding: .utf8)
            try "operations:\n  - rename_column: {table: notes, from: body, to: text}\n".write(toFile: directory + "/02_text.yaml", atomically: true, encoding: .utf8)
            let url = ["--database-url", db.url]

            let plan = try baton(["plan", directory + "/01_size.json"] + url)
            #expect(plan.status == 0, "\(plan.output)")
            #expect(plan.output.contains("-- start") && plan.output.contains("NOT VALID") && plan.output.contains("-- lock: SHARE UPDATE EXCLUSIVE"))
            #expect(try await db.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'notes'") == ["2"], "plan changes nothing")

            let apply = try baton(["apply", directory] + url)
            #expect(apply.status == 0, "\(apply.output)")
            #expect(apply.output.contains("applied 01_size, 02_text"))
            #expect(try baton(["apply", directory] + url).output.contains("nothing to apply"))
            #expect(try baton(["latest"] + url).output == "public_02_text")
            #expect(try await db.query("SELECT text, size FROM notes ORDER BY id") == ["a|1", "bb|2"])

            let status = try baton(["status", "--json"] + url)
            let json = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            #expect(json?["latest"] as? String == "public_02_text")
            #expect(((json?["history"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String } == ["01_size", "02_text"])
        }
    }

    @Test func errorsAreOneLine() async throws {
        try await MigrationDatabase.with("CREATE TABLE notes (id int PRIMARY KEY)") { db in
            let file = NSTemporaryDirectory() + "baton-bad-\(UInt32.random(in: 0...UInt32.max)).json"
            try #"{"name": "03_bad", "operations": [{"drop_column": {"table": "notes", "column": "body"}}]}"#.write(toFile: file, atomically: true, encoding: .utf8)
            defer { unlink(file) }
            let bad = try baton(["start", file, "--database-url", db.url])
            #expect(bad.status != 0)
            #expect(bad.output == "Error: \(file): operations[0].drop_column.column: no column 'body' in table 'notes'", "\(bad.output)")
            let noDatabase = try ChildProcess.run(["/usr/bin/env", "-u", "DATABASE_URL", try BuiltProducts.path("baton"), "migrate", "status"])
            #expect(noDatabase.output.trimmingCharacters(in: .whitespacesAndNewlines) == "Error: give --database-url or set DATABASE_URL")
            let nothing = try baton(["complete", "--database-url", db.url])
            #expect(nothing.output == "Error: no migration is in progress")
        }
    }
}
