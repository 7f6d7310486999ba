import ArgumentParser
import BatonCompat
import BatonCore
import Foundation

struct CompatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat",
        abstract: "Are the old and new releases compatible, in both directions?",
        discussion: """
            During a rolling upgrade old and new servers call each other: a client built for OLD talks to a server running NEW (backward) and a client built for NEW talks to a server running OLD (forward). Exit status: 0 compatible, 1 incompatible, 2 bad input.

            Examples:
              baton compat openapi releases/5.3/openapi.yaml releases/5.4/openapi.yaml
              baton compat openapi old.json new.json --format markdown --fail-on WARN
              baton compat openapi old.yaml new.yaml --ignore compat-ignore.txt
              baton compat schema events/v1/order.json events/v2/order.json
              baton compat migration migrations/55_prices.sql migrations/56_index.json
              baton compat openapi old.yaml new.yaml --fail-on-rule operation-deprecated
              baton compat rules                  # every rule id, its level and an example
            """,
        subcommands: [CompatOpenAPI.self, CompatSchema.self, CompatMigration.self, CompatRules.self]
    )
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown, junit
}

extension Finding.Level: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument.uppercased()) }
}

struct ReportOptions: ParsableArguments {
    @Option(help: "text (default; coloured on a terminal), json, markdown or junit.") var format: ReportFormat = .text
    @Option(help: "The lowest level that makes the check fail: ERR or WARN.") var failOn: Finding.Level = .err
    @Option(help: "Fail also on findings of this rule, whatever their level (repeatable; `baton compat rules` lists the ids).") var failOnRule: [String] = []
    @Option(help: "A file of accepted findings, one per line: ID [OPERATION or POINTER]  # reason (oasdiff's ignore lines are read too).") var ignore: String?


    /// Prints the report and exits 0 or 1; bad input exits 2 with one line on stderr.
    func run(_ make: (IgnoreList) async throws -> CompatReport) async throws {
        let report: CompatReport
        do {
            for id in failOnRule where RuleCatalogue.rule(for: id) == nil {
                throw BatonError(.invalidConfiguration, "--fail-on-rule \(id): no such rule; `baton compat rules` lists them")
            }
            report = try await make(try ignore.map(IgnoreList.load) ?? IgnoreList())
        } catch let error as BatonError {
            FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        switch format {
        case .text: print(report.text(color: isatty(STDOUT_FILENO) == 1))
        case .json: print(try report.json())
        case .markdown: print(report.markdown())
        case .junit: print(report.junit())
        }
        if report.incompatible { throw ExitCode(1) }
    }
}

struct CompatOpenAPI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Compare two OpenAPI 3.0/3.1 documents (YAML or JSON) in both directions.",
        discussion: "Example: baton compat openapi old/openapi.yaml new/openapi.yaml --format json")
    @Argument(help: "The OLD release's document.") var old: String
    @Argument(help: "The NEW release's document.") var new: String
    @OptionGroup var report: ReportOptions

    func run() async throws {
        try await report.run { ignore in
            let (before, after) = try await OpenAPILoader.load(old: old, new: new)
            let findings = OpenAPICompat.compare(old: before, new: after)
            return CompatReport(kind: .api, title: "openapi \(old) → \(new)", findings: findings, ignore: ignore, failOn: report.failOn, failOnRules: report.failOnRule)
        }
    }
}

struct CompatSchema: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema", abstract: "Compare two JSON Schema message definitions: producer on one release, consumer on the other.",
        discussion: "Example: baton compat schema events/v1/order.json events/v2/order.json")
    @Argument(help: "The OLD message schema.") var old: String
    @Argument(help: "The NEW message schema.") var new: String
    @OptionGroup var report: ReportOptions

    func run() async throws {
        try await report.run { ignore in
            let name = ((new as NSString).lastPathComponent as NSString).deletingPathExtension
            let findings = MessageSchemaCompat.compare(old: try OpenAPILoader.schema(path: old), new: try OpenAPILoader.schema(path: new), name: name)
            return CompatReport(kind: .messages, title: "schema \(old) → \(new)", findings: findings, ignore: ignore, failOn: report.failOn, failOnRules: report.failOnRule)
        }
    }
}

struct CompatMigration: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migration", abstract: "Lint migrations (plain SQL or pgroll files) for steps that break the running release or lock for long.",
        discussion: "Example: baton compat migration migrations/*.sql --format junit")
    @Argument(help: "SQL files, or pgroll migration files (.json, .yaml).") var files: [String]
    @OptionGroup var report: ReportOptions

    func run() async throws {
        try await report.run { ignore in
            let findings = try files.flatMap { try MigrationLint.lint(path: $0) }
            return CompatReport(kind: .lint, title: "migration lint: \(files.joined(separator: ", "))", findings: findings, ignore: ignore, failOn: report.failOn, failOnRules: report.failOnRule)
        }
    }
}

struct CompatRules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Print every rule: its id, level, direction, what it means and an example.",
        discussion: """
            Examples:
              baton compat rules
              baton compat rules --format markdown > docs/compat-rules.md
              baton compat rules --oasdiff        # oasdiff's rule ids and the Baton rules that match
              baton compat rules --format json | jq -r '.[] | select(.level == "ERR") | .id'
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }
    @Option(help: "text (default), json or markdown.") var format: Format = .text
    @Flag(help: "Print oasdiff's rules beside Baton's instead (for teams switching from oasdiff).") var oasdiff = false

    func run() throws {
        switch (format, oasdiff) {
        case (.text, false): print(RuleCatalogue.text())
        case (.json, false): print(try RuleCatalogue.json())
        case (.markdown, false): print(RuleCatalogue.markdown())
        case (.text, true): print(OasdiffRule.text())
        case (.json, true): print(try OasdiffRule.json())
        case (.markdown, true): print(OasdiffRule.markdown())
        }
    }
}
