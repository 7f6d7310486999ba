import BatonCore
import Foundation

/// One backend as saved on disk.
public struct PersistedBackend: Codable, Sendable, Equatable {
    public enum AdminState: String, Codable, Sendable {
        /// Was taking traffic (or waiting to): comes back routable and keeps being checked.
        case enabled
        /// Was drained by an operator: comes back drained.
        case drained
    }
    public var name: String
    public var address: String
    public var state: AdminState

    public init(name: String, address: String, state: AdminState) {
        self.name = name
        self.address = address
        self.state = state
    }
}

/// Saves the backend list after every change so a restarted proxy comes back as it was.
/// Writes go to a temporary file that is renamed over the old one, so a crash mid-write never
/// leaves a torn file.
public struct BackendStore: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    private struct File: Codable {
        var version = 1
        var backends: [PersistedBackend]
    }

    public func load() throws -> [PersistedBackend] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw BatonError(.io, "\(path): cannot read the saved backend list", underlying: error)
        }
        do {
            return try JSONDecoder().decode(File.self, from: data).backends
        } catch {
            throw BatonError(.invalidConfiguration, "\(path): not a backend list saved by baton proxy (\(error)); move it away to start empty")
        }
    }

    public func save(_ backends: [PersistedBackend]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(backends: backends))
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp")
        try data.write(to: temporary)
        if rename(temporary.path, url.path) != 0 {
            throw BatonError(.io, "\(path): cannot replace the saved backend list (errno \(errno))")
        }
    }
}
