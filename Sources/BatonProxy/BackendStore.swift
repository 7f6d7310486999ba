import BatonCore
import Foundation
import Synchronization

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
    public var release: String?
    public var state: AdminState
    /// Whether it was taking traffic (passing health checks). A backend saved while it had not
    /// passed them yet (or by an older proxy, which did not say) must pass them again.
    public var ready: Bool?
    /// Its own health check (nil when saved by an older proxy: the proxy's default applies).
    public var health: HealthCheck?

    public init(name: String, address: String, release: String? = nil, state: AdminState, ready: Bool? = nil, health: HealthCheck? = nil) {
        self.name = name
        self.address = address
        self.release = release
        self.state = state
        self.ready = ready
        self.health = health
    }
}

/// Saves the backend list after every change so a restarted proxy comes back as it was.
/// Writes go to a temporary file that is fsynced and renamed over the old one (and the directory
/// fsynced), so neither a crash nor a power cut leaves a torn file; saves are serialised and a
/// snapshot older than the last one written is skipped, so concurrent admin calls cannot
/// interleave or go back in time.
public final class BackendStore: Sendable {
    public let path: String
    private let lastSaved = Mutex<UInt64>(0)

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

    /// Saves snapshot number `sequence` unless a later one was saved already.
    public func save(_ backends: [PersistedBackend], sequence: UInt64) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(File(backends: backends))
        try lastSaved.withLock { last in
            guard sequence > last else { return }
            try write(data)
            last = sequence
        }
    }

    private func write(_ data: Data) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BatonError(.io, "\(temporary.path): cannot write the backend list (errno \(errno))") }
        let written = data.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == data.count, synced == 0 else {
            throw BatonError(.io, "\(temporary.path): cannot write the backend list (errno \(errno))")
        }
        if rename(temporary.path, url.path) != 0 {
            throw BatonError(.io, "\(path): cannot replace the saved backend list (errno \(errno))")
        }
        let directoryFD = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}
