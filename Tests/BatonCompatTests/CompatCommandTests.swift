import BatonCompat
import BatonCore
import Foundation
import Testing

/// `baton compat` as a process: exit 0 compatible, 1 incompatible, 2 bad input.
@Suite struct CompatCommandTests {
    let examples = BuiltProducts.packageRoot() + "/Examples/translate/openapi"

    func baton(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let (status, output) = try ChildProcess.run([try BuiltProducts.path("baton"), "compat"] + arguments)
        return (status, output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func write(_ text: String, ext: String = "yaml") throws -> String {
        let path = NSTemporaryDirectory() + "baton-compat-\(UInt32.random(in: 0...UInt32.max)).\(ext)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func translateAppReleasesAreCompatible() throws {
        let run = try baton(["openapi", "\(examples)/5.3.yaml", "\(examples)/5.4.yaml"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.hasSuffix("OK: compatible both ways: roll out in any order (0 ERR, 0 WARN, 6 INFO; failing on ERR)"))
    }

    @Test func exitCodesFormatsAndFailOn() throws {
        let old = try write("openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\npaths:\n  /a: {get: {responses: {\"200\": {description: ok}}}}\n")
        let added = try write("openapi: 3.1.0\ninfo: {title: t, version: \"2\"}\npaths:\n  /a: {get: {responses: {\"200\": {description: ok}}}}\n  /b: {get: {responses: {\"200\": {description: ok}}}}\n")
        let broken = try write("openapi: 3.1.0\ninfo: {title: t\n")
        defer { for path in [old, added, broken] { unlink(path) } }

        #expect(try baton(["openapi", old, added]).status == 0, "a forward WARN passes by default")
        let strict = try baton(["openapi", old, added, "--fail-on", "WARN"])
        #expect(strict.status == 1)
        #expect(strict.output.contains("forward-incompatible: clients built for NEW break against OLD servers; roll out servers first"))
        let removed = try baton(["openapi", added, old, "--format", "json"])
        #expect(removed.status == 1)
        let json = try JSONSerialization.jsonObject(with: Data(removed.output.utf8)) as? [String: Any]
        #expect((json?["findings"] as? [[String: Any]])?.first?["id"] as? String == "operation-removed")
        #expect(try baton(["openapi", added, old, "--format", "junit"]).output.contains("<failure type=\"ERR\""))

        let bad = try baton(["openapi", old, broken])
        #expect(bad.status == 2)
        #expect(bad.output == "Error: \(broken): not valid YAML: line 3, column 1: did not find expected ',' or '}'", "\(bad.output)")
        #expect(try baton(["openapi", old, "/nonexistent.yaml"]).status == 2)
    }

    @Test func migrationLintExitCodes() throws {
        let safe = try write("CREATE INDEX CONCURRENTLY i ON t (c);\n", ext: "sql")
        let unsafe = try write("ALTER TABLE t DROP COLUMN c;\n", ext: "sql")
        defer { unlink(safe); unlink(unsafe) }
        #expect(try baton(["migration", safe]).status == 0)
        let run = try baton(["migration", unsafe, "--format", "markdown"])
        #expect(run.status == 1)
        #expect(run.output.contains("| ERR | none | `drop-column` | \(unsafe):1 |"), "\(run.output)")
    }

    @Test func rulesFailOnRuleAndIgnoreIds() throws {
        let rules = try baton(["rules", "--format", "json"])
        #expect(rules.status == 0)
        let listed = try JSONSerialization.jsonObject(with: Data(rules.output.utf8)) as? [[String: Any]]
        #expect(listed?.compactMap { $0["id"] as? String } == RuleCatalogue.rules.map(\.id))

        let old = try write(RuleCatalogue.Example.operation("{responses: {\"200\": {description: ok}}}"))
        let deprecated = try write(RuleCatalogue.Example.operation("{deprecated: true, responses: {\"200\": {description: ok}}}"))
        let patterned = try write(RuleCatalogue.Example.request("{type: string, pattern: \"^[a-z]+$\"}"))
        let plain = try write(RuleCatalogue.Example.request("{type: string}"))
        let accepted = try write("pattern-added POST /items  # names were always lower case\n", ext: "txt")
        let unknown = try write("# accepted\nno-such-rule  # why\n", ext: "txt")
        defer { for path in [old, deprecated, patterned, plain, accepted, unknown] { unlink(path) } }

        #expect(try baton(["openapi", old, deprecated]).status == 0, "a deprecation is INFO")
        let failing = try baton(["openapi", old, deprecated, "--fail-on-rule", "operation-deprecated"])
        #expect(failing.status == 1)
        #expect(failing.output.hasSuffix("failing on ERR and operation-deprecated)"), "\(failing.output)")
        let typo = try baton(["openapi", old, deprecated, "--fail-on-rule", "operation-deprecate"])
        #expect(typo.status == 2, "\(typo.output)")
        #expect(typo.output.contains("--fail-on-rule operation-deprecate: no such rule"), "\(typo.output)")

        #expect(try baton(["openapi", plain, patterned]).status == 1)
        let ignored = try baton(["openapi", plain, patterned, "--ignore", accepted])
        #expect(ignored.status == 0, "an id without its place covers request-body.pattern-added: \(ignored.output)")
        #expect(ignored.output.contains("ignored: request-body.pattern-added (names were always lower case)"))
        let bad = try baton(["openapi", plain, patterned, "--ignore", unknown])
        #expect(bad.status == 2)
        #expect(bad.output == "Error: \(unknown):2: no rule 'no-such-rule'; `baton compat rules` lists them", "\(bad.output)")
    }
}
