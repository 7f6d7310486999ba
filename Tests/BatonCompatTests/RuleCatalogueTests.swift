import BatonCompat
import BatonCore
import Foundation
import Testing

/// Every rule's example, compared: exactly the findings the catalogue lists, the rule's own
/// among them. This is the table of pairs for every rule, both directions, ids and levels.
@Suite struct RuleCatalogueTests {
    @Test(arguments: RuleCatalogue.rules.map(\.id))
    func example(_ id: String) throws {
        let rule = try #require(RuleCatalogue.rules.first { $0.id == id })
        let findings: [Finding]
        if rule.example.kind == .migration {
            findings = MigrationLint.lint(sql: rule.example.new, place: "example.sql", firstLine: 1)
        } else {
            let documents = rule.example.documents
            findings = OpenAPICompat.compare(old: try OpenAPILoader.parse(documents.old, file: "old.yaml"), new: try OpenAPILoader.parse(documents.new, file: "new.yaml"))
        }
        #expect(Set(findings.map(RuleCatalogue.Expected.init)) == Set(rule.example.expected), "\(id)")
        #expect(findings.contains { RuleCatalogue.id($0.id, is: id) }, "the example of \(id) does not report it")
        for finding in findings {
            #expect(RuleCatalogue.rule(for: finding.id) != nil, "\(finding.id) is reported but not catalogued")
        }
    }

    @Test func idsAreUniqueAndSummariesOneSentence() {
        let ids = RuleCatalogue.rules.map(\.id)
        #expect(Set(ids).count == ids.count)
        for rule in RuleCatalogue.rules {
            #expect(!rule.summary.isEmpty && !rule.summary.contains("\n"), "\(rule.id)")
        }
    }

    /// docs/compat-rules.md is the catalogue as `baton compat rules --format markdown` prints it.
    @Test func documentedCatalogueIsCurrent() throws {
        let path = BuiltProducts.packageRoot() + "/docs/compat-rules.md"
        let documented = try String(contentsOfFile: path, encoding: .utf8)
        #expect(documented == RuleCatalogue.markdown() + "\n", "regenerate: baton compat rules --format markdown > docs/compat-rules.md")
    }
}
