import BatonCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs releases as processes on this machine under `Supervisor`, detached from the
/// orchestrator (their own session), so they outlive `baton deploy`. The supervisor records its
/// pid, port and restarts in `run/NODE@RELEASE.pid` before it starts the app, so a killed
/// orchestrator never leaves an instance nobody knows about. Output goes to
/// `logs/NODE-RELEASE.log`.
public struct LocalProcessDriver: NodeDriver {
    public let stateDirectory: String

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    var runDirectory: String { stateDirectory + "/run" }
    var logDirectory: String { stateDirectory + "/logs" }

    /// The release store is on this machine: the release runs from where it is.
    public func ship(release: String, from source: String, to node: String, keep: Int) async throws -> String {
        source
    }

    public func logLocation(node: String, release: String) -> String {
        "\(logDirectory)/\(node)-\(release).log"
    }

    public func start(node: String, release: String, port: Int, command: String, environment: [String: String]) async throws -> NodeInstance {
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        let supervisor = try Supervisor.install(into: runDirectory)
        let pidFile = "\(runDirectory)/\(node)@\(release).pid"
        let logFile = logLocation(node: node, release: release)
        unlink(pidFile)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        env["BATON_NODE"] = node
        env["BATON_RELEASE"] = release
        env["BATON_PORT"] = String(port)
        let pid = try ChildProcess.spawn(["/bin/sh", supervisor, pidFile, String(port), command], environment: env, output: logFile, detached: true)
        // The supervisor writes its state file first; wait for it (or for it to die).
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(5) {
            if let instance = read(pidFile: pidFile, node: node, release: release) { return instance }
            if !Self.isAlive(pid) { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw BatonError(.unavailable, "\(node): release \(release) did not start; see \(logFile)")
    }

    public func instances(node: String) -> [NodeInstance] {
        allInstances().filter { $0.node == node }
    }

    /// Every instance with a pid file, whichever node it is (also nodes baton.yml no longer has).
    public func allInstances() -> [NodeInstance] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDirectory)) ?? []
        return files.sorted().compactMap { file -> NodeInstance? in
            guard file.hasSuffix(".pid"), let at = file.firstIndex(of: "@") else { return nil }
            let node = String(file[..<at])
            let release = String(file[file.index(after: at)...].dropLast(4))
            return read(pidFile: "\(runDirectory)/\(file)", node: node, release: release)
        }
    }

    /// Signals the instance's process group (the supervisor and the release), so the release
    /// gets `signal` itself and the supervisor does not restart it; kills the group after `grace`.
    public func stop(_ instance: NodeInstance, signal: Int32, grace: Duration) async throws {
        if Self.isAlive(instance.pid) {
            kill(-instance.pid, signal)
            let start = ContinuousClock.now
            while Self.isAlive(instance.pid) && ContinuousClock.now - start < grace {
                try await Task.sleep(for: .milliseconds(10))
            }
            kill(-instance.pid, SIGKILL)
            let killed = ContinuousClock.now
            while Self.isAlive(instance.pid) {
                guard ContinuousClock.now - killed < .seconds(10) else {
                    throw BatonError(.unavailable, "\(instance.node): pid \(instance.pid) (release \(instance.release)) survived SIGKILL for 10s")
                }
                try await Task.sleep(for: .milliseconds(5))
            }
        }
        unlink("\(runDirectory)/\(instance.node)@\(instance.release).pid")
    }

    public func freePort(node: String) throws -> Int {
        try LocalPort.free()
    }

    public func listener(node: String, port: Int) async throws -> PortListener? {
        PortListener.local(port: port)
    }

    /// "PID PORT RESTARTS LAST_EXIT" from the supervisor (older files hold "PID PORT").
    private func read(pidFile: String, node: String, release: String) -> NodeInstance? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let pid = Int32(fields[0]), let port = Int(fields[1]) else { return nil }
        return NodeInstance(
            node: node, release: release, pid: pid, port: port, alive: Self.isAlive(pid),
            restarts: fields.count > 2 ? Int(fields[2]) ?? 0 : 0, lastExit: fields.count > 3 ? Int32(fields[3]) : nil
        )
    }

    /// Alive and not a zombie: a child of ours that exited is reaped here; one that is someone
    /// else's child shows as state Z in /proc until its parent reaps it.
    static func isAlive(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }
}
