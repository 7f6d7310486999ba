import BatonCore
import Foundation

/// Release artifacts, Capistrano style: `releases/ID/` holds a copy of what `baton release add`
/// was given; the newest `keep` are kept, and never the one running or the one before it.
public struct ReleaseStore: Sendable {
    public let directory: String

    public init(stateDirectory: String) {
        directory = stateDirectory + "/releases"
    }

    public struct Release: Codable, Sendable, Equatable {
        public var id: String
        public var path: String
        public var added: Date
    }

    public func path(of id: String) -> String { "\(directory)/\(id)" }

    public func exists(_ id: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path(of: id), isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// Copies `source` in as release `id` and prunes old ones; returns the pruned ids.
    @discardableResult
    public func add(source: String, id: String, keep: Int, protected: Set<String>) throws -> [String] {
        guard !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "._-".contains($0) }) else {
            throw BatonError(.invalidArgument, "--id '\(id)': expected letters, digits, '.', '_' or '-'")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw BatonError(.invalidArgument, "\(source): not a directory; give the release's build output directory")
        }
        guard !exists(id) else { throw BatonError(.conflict, "release \(id) already exists in \(directory)") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let staging = "\(directory)/.\(id).incoming"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.copyItem(atPath: source, toPath: staging)
        try FileManager.default.moveItem(atPath: staging, toPath: path(of: id))
        let stale = list().dropLast(keep).map(\.id).filter { !protected.contains($0) && $0 != id }
        for old in stale { try? FileManager.default.removeItem(atPath: path(of: old)) }
        return stale
    }

    /// Oldest first.
    public func list() -> [Release] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { !$0.hasPrefix(".") }.compactMap { name -> Release? in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path(of: name))
            guard attributes?[.type] as? FileAttributeType == .typeDirectory else { return nil }
            return Release(id: name, path: path(of: name), added: attributes?[.modificationDate] as? Date ?? .distantPast)
        }.sorted { ($0.added, $0.id) < ($1.added, $1.id) }
    }
}
