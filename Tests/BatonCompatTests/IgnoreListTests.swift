import BatonCompat
import BatonCore
import Foundation
import Testing

/// Ignore files: Baton's lines, oasdiff's lines through the rule table, and refusals that name
/// the line.
@Suite struct IgnoreListTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "baton-ignore-\(UInt32.random(in: 0...UInt32.max)).txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// GET /items answering 200 in OLD and 201 in NEW: a success status changed, 200 removed and
    /// 201 added.
    func statusChange(ignoring text: String) throws -> CompatReport {
        let path = try write(text)
        defer { unlink(path) }
        let old = RuleCatalogue.Example.document("paths: {/items: {get: {responses: {\"200\": {description: ok}}}}}")
        let new = RuleCatalogue.Example.document("paths: {/items: {get: {responses: {\"201\": {description: created}}}}}")
        let findings = OpenAPICompat.compare(old: try OpenAPILoader.parse(old, file: "old.yaml"), new: try OpenAPILoader.parse(new, file: "new.yaml"))
        return CompatReport(kind: .api, title: "t", findings: findings, ignore: try IgnoreList.load(path: path), failOn: .warn)
    }

    @Test(arguments: [
        "GET /items removed the success response with the status `200`",
        "- get /items removed the success response with the status '200' (accepted in review)",
        "error at new.yaml, in API GET /items removed the success response with the status `200` [response-success-status-removed].",
    ])
    func oasdiffLineIgnoresTheSameBreak(_ line: String) throws {
        let report = try statusChange(ignoring: "# Accepted breaking changes\n\nThe 5.4 release answers 201.\n\(line)\n")
        #expect(Set(report.ignored.map(\.finding.id)) == ["success-status-changed", "response-status-removed"])
        #expect(report.findings.map(\.id) == ["response-status-added"])
        #expect(report.ignored.allSatisfy { $0.reason.contains("response-success-status-removed") })
    }

    @Test func oasdiffLineOnAnotherOperationIgnoresNothing() throws {
        let report = try statusChange(ignoring: "GET /other removed the success response with the status `200`\n")
        #expect(report.ignored.isEmpty)
    }

    @Test(arguments: [
        ("GET /items something oasdiff never said", ":1: no oasdiff message on this line is one Baton knows"),
        ("/items removed the success response with the status `200`", ":1: expected ID [OPERATION or POINTER]  # reason, or an oasdiff line with METHOD /path and its message"),
        ("operation-removed GET /items", ":1: give the reason after '#'"),
        ("operation-remove GET /items  # typo", ":1: no rule 'operation-remove'"),
    ])
    func refusedLinesNameTheLine(_ line: String, _ message: String) throws {
        let path = try write(line + "\n")
        defer { unlink(path) }
        let error = #expect(throws: BatonError.self) { try IgnoreList.load(path: path) }
        #expect(error?.description.hasPrefix(path + message) == true, "\(error?.description ?? "")")
    }

    /// "… default value changed from %s to %s" also holds "… changed from %s to %s" (a type
    /// change): the line names the default, so a type change stays reported.
    @Test func theMostSpecificOasdiffMessageWins() throws {
        let path = try write("POST /items the `limit` request property default value changed from `1` to `2`\n")
        defer { unlink(path) }
        let list = try IgnoreList.load(path: path)
        #expect(Set(list.entries.map(\.id)) == ["request-body.default-changed"])
        #expect(list.entries.allSatisfy { $0.scope == "POST /items" })
    }

    @Test func placePrefixesAreChecked() {
        #expect(RuleCatalogue.rule(for: "response-body.type-changed")?.id == "type-changed")
        #expect(RuleCatalogue.rule(for: "reponse-body.type-changed") == nil)
        #expect(RuleCatalogue.rule(for: "response-body.operation-removed") == nil)
    }

    @Test func everyMappedOasdiffRuleNamesCataloguedBatonRules() throws {
        #expect(OasdiffRule.all.count == 703)
        #expect(Set(OasdiffRule.all.map(\.id)).count == OasdiffRule.all.count)
        for rule in OasdiffRule.all {
            for id in rule.baton { #expect(RuleCatalogue.rule(for: id) != nil, "\(rule.id) → \(id)") }
        }
        let path = BuiltProducts.packageRoot() + "/docs/oasdiff-mapping.md"
        #expect(try String(contentsOfFile: path, encoding: .utf8) == OasdiffRule.markdown() + "\n", "regenerate: baton compat rules --oasdiff --format markdown > docs/oasdiff-mapping.md")
    }
}
