import Foundation

/// Findings of one check, what was ignored and why, and the verdict; printed as text (grouped
/// by direction, coloured on a terminal), JSON, Markdown or JUnit XML.
public struct CompatReport: Sendable {
    public enum Kind: String, Sendable { case api, messages, lint }

    public var kind: Kind
    public var title: String
    public var findings: [Finding]
    public var ignored: [(finding: Finding, reason: String)]
    public var failOn: Finding.Level
    /// Rule ids that fail the check at any level (`--fail-on-rule operation-deprecated`).
    public var failOnRules: [String]

    public init(kind: Kind, title: String, findings: [Finding], ignore: IgnoreList = .init(), failOn: Finding.Level = .err, failOnRules: [String] = []) {
        self.kind = kind
        self.title = title
        self.failOn = failOn
        self.failOnRules = failOnRules
        var kept: [Finding] = []
        var ignored: [(Finding, String)] = []
        for finding in findings {
            if let reason = ignore.reason(for: finding) { ignored.append((finding, reason)) } else { kept.append(finding) }
        }
        self.findings = kept
        self.ignored = ignored
    }

    /// Whether a finding fails the check: at or above --fail-on, or of a --fail-on-rule rule.
    public func fails(_ finding: Finding) -> Bool {
        finding.level >= failOn || failOnRules.contains { RuleCatalogue.id(finding.id, is: $0) }
    }

    public var incompatible: Bool { findings.contains(where: fails) }

    func broken(_ direction: Finding.Direction) -> Bool { findings.contains { $0.direction == direction && fails($0) } }

    /// What the findings mean for the order of the rollout.
    public var verdict: String {
        switch (broken(.backward), broken(.forward)) {
        case (false, false): return kind == .lint ? (findings.isEmpty ? "no unsafe steps" : "no step above \(failOn.rawValue.lowercased())") : "compatible both ways: roll out in any order"
        case (true, false): return kind == .api
            ? "backward-incompatible: clients built for OLD break against NEW servers; upgrade every client first"
            : "backward-incompatible: consumers on NEW cannot read what OLD producers wrote; upgrade producers and drain old messages first"
        case (false, true): return kind == .api
            ? "forward-incompatible: clients built for NEW break against OLD servers; roll out servers first"
            : "forward-incompatible: consumers on OLD cannot read what NEW producers write; upgrade consumers first"
        case (true, true): return "incompatible both ways: no rollout order is safe; split the change over two releases"
        }
    }

    // MARK: Text

    public func text(color: Bool) -> String {
        func paint(_ text: String, _ level: Finding.Level) -> String {
            guard color else { return text }
            let code = level == .err ? "31" : level == .warn ? "33" : "36"
            return "\u{1B}[\(code)m\(text)\u{1B}[0m"
        }
        var lines = [title]
        let groups: [(String, Finding.Direction)] = kind == .lint
            ? [("", .none)]
            : [
                (kind == .api ? "backward (client built for OLD → server running NEW)" : "backward (producer on OLD → consumer on NEW)", .backward),
                (kind == .api ? "forward (client built for NEW → server running OLD)" : "forward (producer on NEW → consumer on OLD)", .forward),
            ]
        // Notes on the documents themselves (repairs) come first, in an API or message check.
        let notes = kind == .lint ? [] : findings.filter { $0.direction == .none }
        if !notes.isEmpty {
            lines.append("\nnotes on the documents: \(notes.count)")
            for note in notes { lines.append("  \(paint("INFO", .info)) \(note.id)  \(note.operation)  \(note.pointer)\n       \(note.message)") }
        }
        for (heading, direction) in groups {
            let inGroup = findings.filter { $0.direction == direction }
            if !heading.isEmpty { lines.append("\n\(heading): \(inGroup.isEmpty ? "nothing" : "\(inGroup.count) finding\(inGroup.count == 1 ? "" : "s")")") }
            for finding in inGroup.sorted(by: { ($1.level, $0.operation, $0.pointer) < ($0.level, $1.operation, $1.pointer) }) {
                lines.append("  \(paint(finding.level.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0), finding.level)) \(finding.id)  \(finding.operation)  \(finding.pointer)")
                lines.append("       \(finding.message)")
            }
        }
        if !ignored.isEmpty { lines.append("\nignored: " + ignored.map { "\($0.finding.id) (\($0.reason))" }.joined(separator: "; ")) }
        let counts = Finding.Level.allCases.reversed().map { level in "\(findings.filter { $0.level == level }.count) \(level.rawValue)" }.joined(separator: ", ")
        lines.append("\n\(incompatible ? paint("INCOMPATIBLE", .err) : "OK"): \(verdict) (\(counts); failing on \(([failOn.rawValue] + failOnRules).joined(separator: " and ")))")
        return lines.joined(separator: "\n")
    }

    // MARK: JSON

    public func json() throws -> String {
        struct Output: Encodable {
            var title: String
            var compatible: Bool
            var verdict: String
            var failOn: String
            var findings: [Finding]
            var ignored: [Ignored]
        }
        struct Ignored: Encodable {
            var finding: Finding
            var reason: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let output = Output(title: title, compatible: !incompatible, verdict: verdict, failOn: failOn.rawValue, findings: findings, ignored: ignored.map { Ignored(finding: $0.finding, reason: $0.reason) })
        return String(decoding: try encoder.encode(output), as: UTF8.self)
    }

    // MARK: Markdown

    public func markdown() -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        var lines = ["### \(cell(title))", "", "**\(incompatible ? "Incompatible" : "Compatible")**: \(verdict)", ""]
        if findings.isEmpty {
            lines.append("No findings.")
        } else {
            lines += ["| level | direction | id | where | pointer | why |", "|---|---|---|---|---|---|"]
            for finding in findings {
                lines.append("| \(finding.level.rawValue) | \(finding.direction.rawValue) | `\(finding.id)` | \(cell(finding.operation)) | `\(cell(finding.pointer))` | \(cell(finding.message)) |")
            }
        }
        if !ignored.isEmpty {
            lines += ["", "Ignored: " + ignored.map { "`\($0.finding.id)` (\(cell($0.reason)))" }.joined(separator: ", ")]
        }
        return lines.joined(separator: "\n")
    }

    // MARK: JUnit

    /// One test case per finding (failed when at or above --fail-on), so CI systems show them.
    public func junit() -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = findings.filter(fails).count
        var lines = [
            #"<?xml version="1.0" encoding="UTF-8"?>"#,
            #"<testsuites name="baton compat" tests="\#(max(findings.count, 1))" failures="\#(failures)">"#,
            #"  <testsuite name="\#(escape(title))" tests="\#(max(findings.count, 1))" failures="\#(failures)">"#,
        ]
        if findings.isEmpty { lines.append(#"    <testcase classname="compat" name="\#(escape(verdict))"/>"#) }
        for finding in findings {
            let name = escape("\(finding.direction == .none ? "" : finding.direction.rawValue + " ")\(finding.id) \(finding.operation) \(finding.pointer)")
            if fails(finding) {
                lines.append(#"    <testcase classname="compat.\#(finding.direction.rawValue)" name="\#(name)">"#)
                lines.append(#"      <failure type="\#(finding.level.rawValue)" message="\#(escape(finding.message))"/>"#)
                lines.append("    </testcase>")
            } else {
                lines.append(#"    <testcase classname="compat.\#(finding.direction.rawValue)" name="\#(name)"><system-out>\#(escape(finding.level.rawValue + ": " + finding.message))</system-out></testcase>"#)
            }
        }
        lines += ["  </testsuite>", "</testsuites>"]
        return lines.joined(separator: "\n")
    }
}
