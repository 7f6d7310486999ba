import BatonCore
import Foundation

/// The state of one machine's deployments in its state directory: `journal.jsonl`, one JSON
/// event a line, each written and fsynced before the step it announces runs; and
/// `deploy.lock`, an exclusive `flock` the kernel releases when the holder exits, however it
/// exits, with the holder written inside.
public struct FileStateStore: StateStore {
    public let journalPath: String
    public let lockPath: String

    public init(stateDirectory: String) {
        journalPath = stateDirectory + "/journal.jsonl"
        lockPath = stateDirectory + "/deploy.lock"
    }

    /// A journal file on its own (for reading; its lock is beside it).
    public init(journalPath: String) {
        self.journalPath = journalPath
        lockPath = (journalPath as NSString).deletingLastPathComponent + "/deploy.lock"
    }

    public var location: String { journalPath }

    public func append(_ event: RolloutEvent) async throws {
        var line = try Self.encoder.encode(event)
        line.append(0x0A)
        try FileManager.default.createDirectory(atPath: (journalPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(journalPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatonError(.io, "\(journalPath): cannot open the journal (errno \(errno))") }
        defer { close(fd) }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else { throw BatonError(.io, "\(journalPath): cannot write the journal (errno \(errno))") }
    }

    public func events() async throws -> [RolloutEvent] {
        guard let data = FileManager.default.contents(atPath: journalPath) else { return [] }
        let lines = data.split(separator: 0x0A)
        var events: [RolloutEvent] = []
        for (index, line) in lines.enumerated() {
            do {
                events.append(try Self.decoder.decode(RolloutEvent.self, from: Data(line)))
            } catch {
                // A torn last line (killed mid-write) is the only damage an append-only file
                // can take; anything else is reported.
                if index == lines.count - 1 { break }
                throw BatonError(.invalidConfiguration, "\(journalPath):\(index + 1): unreadable journal line (\(error))")
            }
        }
        return events
    }

    public func lock(_ holder: LockHolder) async throws -> any HeldLock {
        try FileManager.default.createDirectory(atPath: (lockPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatonError(.io, "\(lockPath): cannot open (errno \(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let current = Self.holder(in: fd)
            close(fd)
            throw BatonError(.conflict, "another baton deploy or rollback holds the lock: \(current.map(\.description) ?? "?"); wait for it or stop it first")
        }
        ftruncate(fd, 0)
        let data = try Self.encoder.encode(holder)
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return FileLock(fd: fd)
    }

    public func lockHolder() async throws -> LockHolder? {
        // Read-only, and a shared lock to look: a deploy taking the lock meanwhile is not refused.
        let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_SH | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return nil
        }
        return Self.holder(in: fd) ?? LockHolder(who: "?", pid: 0, directory: "?", command: "?", since: .distantPast)
    }

    public func breakLock() async throws -> String {
        guard let holder = try await lockHolder() else { return "the lock is free" }
        let stop = holder.pid > 0 ? "stop it (kill \(holder.pid)) if it is stuck" : "stop the baton process that holds it if it is stuck"
        throw BatonError(.conflict, "the lock is a flock held by \(holder.pid > 0 ? "pid \(holder.pid)" : "a process") on this machine, released when it exits; \(stop)")
    }

    /// The holder written in the lock file: JSON, or a bare pid (older Baton); nil while the
    /// holder is still writing it.
    private static func holder(in fd: Int32) -> LockHolder? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = pread(fd, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        let data = Data(buffer.prefix(count))
        if let pid = Int32(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            return LockHolder(who: "?", pid: pid, directory: "?", command: "?", since: .distantPast)
        }
        return try? decoder.decode(LockHolder.self, from: data)
    }

    /// How events and holders are written, in files and in PostgreSQL alike.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The open, flocked lock file: closing it gives the lock up.
final class FileLock: HeldLock {
    private let fd: Int32

    init(fd: Int32) {
        self.fd = fd
    }

    func release() async {
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
    }

    deinit {
        close(fd)
    }
}
