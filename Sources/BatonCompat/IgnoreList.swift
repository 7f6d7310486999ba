import BatonCore
import Foundation

/// Findings a team has accepted, each with its reason. One per line:
///
///     ID [OPERATION or /json/pointer prefix]  # reason
///
/// `response-body.enum-value-added GET /api/projects  # our clients decode enums leniently`
///
/// An id without its place (`enum-value-added`) covers every place. oasdiff's ignore lines are
/// read too, so a team switching keeps its file: a line naming `METHOD /path` and one of
/// oasdiff's messages ignores the Baton rules that report the same break on that operation.
public struct IgnoreList: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var scope: String?
        public var reason: String
    }

    public var entries: [Entry] = []

    public init(entries: [Entry] = []) { self.entries = entries }

    public static func load(path: String) throws -> IgnoreList {
        guard let data = FileManager.default.contents(atPath: path) else { throw BatonError(.notFound, "\(path): cannot read the ignore file") }
        var list = IgnoreList()
        var oasdiffPatterns: [NSRegularExpression] = []
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let at = "\(path):\(number + 1)"
            let parts = line.split(separator: "#", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let words = parts[0].split(separator: " ", maxSplits: 1).map(String.init)
            // A Baton line starts with a rule id (or a word spelled like one, then a reason);
            // anything else is oasdiff's.
            let id = words.first ?? ""
            let spelledLikeID = id.first?.isLetter == true && id.contains("-") && id.allSatisfy { $0.isLetter || $0 == "-" || $0 == "." }
            guard RuleCatalogue.rule(for: id) != nil || (spelledLikeID && parts.count == 2) else {
                if oasdiffPatterns.isEmpty { oasdiffPatterns = OasdiffRule.all.map(Self.pattern) }
                list.entries += try oasdiff(line, at: at, patterns: oasdiffPatterns)
                continue
            }
            guard RuleCatalogue.rule(for: id) != nil else {
                throw BatonError(.invalidConfiguration, "\(at): no rule '\(id)'; `baton compat rules` lists them")
            }
            guard parts.count == 2, !parts[1].isEmpty else {
                throw BatonError(.invalidConfiguration, "\(at): give the reason after '#': ID [OPERATION or POINTER]  # why this is fine")
            }
            list.entries.append(Entry(id: id, scope: words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : nil, reason: parts[1]))
        }
        return list
    }

    /// An oasdiff ignore line: free text holding `METHOD /path` and one of oasdiff's messages
    /// (values quoted with back-ticks or single quotes), matched without case as oasdiff does.
    /// A line with no path is prose (oasdiff files are often Markdown) and ignores nothing.
    static func oasdiff(_ line: String, at: String, patterns: [NSRegularExpression]) throws -> [Entry] {
        let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let pathIndex = words.firstIndex(where: { $0.hasPrefix("/") }) else { return [] }
        let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
        guard pathIndex > 0, methods.contains(words[pathIndex - 1].lowercased()) else {
            throw BatonError(.invalidConfiguration, "\(at): expected ID [OPERATION or POINTER]  # reason, or an oasdiff line with METHOD /path and its message")
        }
        let operation = "\(words[pathIndex - 1].uppercased()) \(words[pathIndex])"
        let text = line.lowercased().replacingOccurrences(of: "'", with: "`")
        let range = NSRange(text.startIndex..., in: text)
        let matching = zip(OasdiffRule.all, patterns).filter { $1.firstMatch(in: text, range: range) != nil }.map(\.0)
        // Messages overlap ("… default value changed from %s to %s" holds "… changed from %s to
        // %s"): the one with the most literal text is the line's.
        func literal(_ rule: OasdiffRule) -> Int { rule.message.replacingOccurrences(of: "%s", with: "").replacingOccurrences(of: "%v", with: "").count }
        let longest = matching.map(literal).max() ?? 0
        let rules = matching.filter { literal($0) == longest }
        guard !rules.isEmpty else {
            throw BatonError(.invalidConfiguration, "\(at): no oasdiff message on this line is one Baton knows (`baton compat rules --oasdiff` lists them)")
        }
        let ids = rules.flatMap(\.baton).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return ids.map { Entry(id: $0, scope: operation, reason: "oasdiff ignore line \(at): \(rules.map(\.id).joined(separator: ", "))") }
    }

    /// oasdiff's message as a pattern: its values (`%s`) match any text.
    private static func pattern(of rule: OasdiffRule) -> NSRegularExpression {
        let literal = NSRegularExpression.escapedPattern(for: rule.message.lowercased().replacingOccurrences(of: "'", with: "`"))
        // An escaped message with `.+?` for its values always compiles.
        return try! NSRegularExpression(pattern: literal.replacingOccurrences(of: "%s", with: ".+?").replacingOccurrences(of: "%v", with: ".+?"))
    }

    /// The reason `finding` is ignored, or nil.
    public func reason(for finding: Finding) -> String? {
        entries.first { entry in
            RuleCatalogue.id(finding.id, is: entry.id)
                && (entry.scope.map { finding.operation == $0 || finding.pointer == $0 || finding.pointer.hasPrefix($0 + "/") } ?? true)
        }?.reason
    }
}
