import BatonCore
import Foundation

/// Findings a team has accepted, each with its reason. One per line:
///
///     ID [OPERATION or /json/pointer prefix]  # reason
///
/// `response-body.enum-value-added GET /api/projects  # our clients decode enums leniently`
///
/// An id without its place (`enum-value-added`) covers every place.
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
        for (number, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: "#", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[1].isEmpty else {
                throw BatonError(.invalidConfiguration, "\(path):\(number + 1): give the reason after '#': ID [OPERATION or POINTER]  # why this is fine")
            }
            let words = parts[0].split(separator: " ", maxSplits: 1).map(String.init)
            guard let id = words.first else { throw BatonError(.invalidConfiguration, "\(path):\(number + 1): expected a finding id before '#'") }
            guard RuleCatalogue.rule(for: id) != nil else {
                throw BatonError(.invalidConfiguration, "\(path):\(number + 1): no rule '\(id)'; `baton compat rules` lists them")
            }
            list.entries.append(Entry(id: id, scope: words.count > 1 ? words[1].trimmingCharacters(in: .whitespaces) : nil, reason: parts[1]))
        }
        return list
    }

    /// The reason `finding` is ignored, or nil.
    public func reason(for finding: Finding) -> String? {
        entries.first { entry in
            RuleCatalogue.id(finding.id, is: entry.id) && (entry.scope.map { finding.operation == $0 || finding.pointer.hasPrefix($0) } ?? true)
        }?.reason
    }
}
