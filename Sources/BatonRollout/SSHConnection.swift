import BatonCore
import Foundation
import Synchronization

/// One host reached with the system OpenSSH client. The first call opens a master connection
/// (ControlMaster, kept for a minute after the last use) and every later command rides on it,
/// so a command costs a round trip, not a handshake. `BatchMode` never prompts, and host keys
/// are checked strictly against known_hosts: an unknown key is an error that names the
/// `ssh-keyscan` line to add, never trusted on first use.
final class SSHConnection: Sendable {
    let target: BatonConfig.SSHTarget
    let settings: BatonConfig.SSH
    /// The names of the nodes on this host, for messages.
    let node: String
    /// The master being opened, shared by the commands that wait for it: two `ssh -f` masters
    /// for one host would leave the second running unused.
    private let opening = Mutex<Task<Void, any Error>?>(nil)
    /// When the master was last seen working: within 10 s (of its 60 s persistence) it is
    /// trusted without another `ssh -O check` process.
    private let confirmed = Mutex<ContinuousClock.Instant?>(nil)

    init(target: BatonConfig.SSHTarget, settings: BatonConfig.SSH, node: String) {
        self.target = target
        self.settings = settings
        self.node = node
    }

    /// Control sockets live in a short per-user directory: a Unix socket path is limited to
    /// 108 bytes, and a project's state directory can be deeper than that.
    static var controlDirectory: String { "/tmp/baton-ssh-\(getuid())" }

    /// The options every ssh (and rsync's ssh) is run with.
    var options: [String] {
        var options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=\(max(1, Int(settings.connectTimeout.components.seconds)))",
            // A host that stops answering is noticed in about 6 s, not at TCP's minutes.
            "-o", "ServerAliveInterval=2",
            "-o", "ServerAliveCountMax=3",
            "-o", "ControlPath=\(Self.controlDirectory)/\(controlName)",
            "-o", "LogLevel=ERROR",
            "-p", String(target.port),
        ]
        if let identity = settings.identityFile { options += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        if let knownHosts = settings.knownHosts { options += ["-o", "UserKnownHostsFile=\(knownHosts)"] }
        return options
    }

    /// Runs `script` with `sh` on the host, its arguments as `$1`…, standard input from the file
    /// `input`; returns what it printed. A non-zero exit is an error carrying its stderr.
    @discardableResult
    func run(_ script: String, _ arguments: [String], input: String = "/dev/null", timeout: Duration) async throws -> String {
        try await openMaster()
        let started = ContinuousClock.now
        defer { SSHStatistics.shared.record(.command, since: started) }
        let remote = (["sh", "-c", script, "baton"] + arguments).map(Self.quote).joined(separator: " ")
        let (code, output, errors) = try await ChildProcess.run(["/usr/bin/ssh"] + options + ["-o", "ControlMaster=no", target.destination, remote], input: input, timeout: timeout)
        guard let code, code != 255 else {
            confirmed.withLock { $0 = nil }
            guard let code else { throw BatonError(.timeout, "\(node) (\(target)): no answer within \(timeout.shortDescription)") }
            throw failure(code: code, errors: errors)
        }
        guard code == 0 else { throw failure(code: code, errors: errors) }
        confirmed.withLock { $0 = .now }
        return output
    }

    /// Runs a local command that itself uses ssh (rsync), with the same options and master.
    func runLocal(_ arguments: [String], timeout: Duration) async throws {
        try await openMaster()
        let started = ContinuousClock.now
        defer { SSHStatistics.shared.record(.copy, since: started) }
        let (code, _, errors) = try await ChildProcess.run(arguments, input: "/dev/null", timeout: timeout)
        guard let code else { throw BatonError(.timeout, "\(node) (\(target)): \(arguments[0]) did not finish within \(timeout.shortDescription)") }
        guard code == 0 else { throw failure(code: code, errors: errors) }
    }

    /// Opens the master connection when there is none: `ssh -f` returns once it is
    /// authenticated and leaves it in the background.
    private func openMaster() async throws {
        let task = opening.withLock { current in
            if let current { return current }
            let task = Task { try await self.connect() }
            current = task
            return task
        }
        defer { opening.withLock { if $0 == task { $0 = nil } } }
        try await task.value
    }

    private func connect() async throws {
        try Self.checkControlDirectory()
        let socket = Self.controlDirectory + "/" + controlName
        if access(socket, F_OK) == 0, let seen = confirmed.withLock({ $0 }), ContinuousClock.now - seen < .seconds(10) {
            return
        }
        if access(socket, F_OK) == 0 {
            if try await ChildProcess.run(["/usr/bin/ssh"] + options + ["-O", "check", target.destination], input: "/dev/null", timeout: .seconds(5)).status == 0 {
                confirmed.withLock { $0 = .now }
                return
            }
            // Left by a master that was killed: a new master would refuse to replace it and
            // run on as a plain connection.
            unlink(socket)
        }
        let timeout = settings.connectTimeout + .seconds(5)
        let started = ContinuousClock.now
        defer { SSHStatistics.shared.record(.connect, since: started) }
        let (code, _, errors) = try await ChildProcess.run(
            ["/usr/bin/ssh"] + options + ["-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-N", "-f", target.destination],
            input: "/dev/null", timeout: timeout
        )
        guard let code else { throw BatonError(.timeout, "\(node) (\(target)): no SSH connection within \(timeout.shortDescription)") }
        guard code == 0 else { throw failure(code: code, errors: errors) }
        confirmed.withLock { $0 = .now }
    }

    /// The control socket's name: a hash of the target (FNV-1a), short whatever the host
    /// name's length, as a Unix socket path must be.
    var controlName: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(target.user ?? "")@\(target.host):\(target.port)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return String(hash, radix: 16)
    }

    /// Lets one shipment at a time reach the host: two nodes on one host share its releases.
    let shipping = SerialGate()

    /// Ours alone: another user's socket there would be used as our connection to the host.
    static func checkControlDirectory() throws {
        try? FileManager.default.createDirectory(atPath: controlDirectory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        var info = stat()
        guard lstat(controlDirectory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw BatonError(.conflict, "\(controlDirectory): expected a directory of this user's with mode 0700 for SSH control sockets; remove it")
        }
    }

    /// One line that says what went wrong and what to do about it.
    private func failure(code: Int32, errors: String) -> BatonError {
        let said = errors.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let knownHosts = settings.knownHosts ?? "~/.ssh/known_hosts"
        let keyscan = "ssh-keyscan -p \(target.port) \(target.host) >> \(knownHosts)"
        if errors.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
            return BatonError(.conflict, "\(node) (\(target)): its host key is not the one in \(knownHosts); if the host was rebuilt, remove the old key (ssh-keygen -f \(knownHosts) -R '[\(target.host)]:\(target.port)') and add the new one after checking it: \(keyscan)")
        }
        if errors.contains("Host key verification failed") || errors.contains("host key is known") {
            return BatonError(.unavailable, "\(node) (\(target)): its host key is not in \(knownHosts), so Baton will not trust it; check the key, then add it: \(keyscan)")
        }
        if code == 255 {
            return BatonError(.unavailable, "\(node) (\(target)): ssh failed: \(said.last ?? "exit 255")")
        }
        return BatonError(.unavailable, "\(node) (\(target)): exit \(code): \(said.suffix(3).joined(separator: " / "))")
    }

    /// Single-quotes a word for the remote shell.
    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// One at a time, in arrival order.
actor SerialGate {
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}

/// What this process spent on SSH: commands (each a round trip on the master connection),
/// copies (rsync) and new master connections. Read by the rollout benchmark.
public final class SSHStatistics: Sendable {
    public enum Kind: Sendable { case command, copy, connect }

    public struct Totals: Sendable, Equatable {
        public var commands = 0
        public var commandTime = Duration.zero
        public var copies = 0
        public var copyTime = Duration.zero
        public var connects = 0
        public var connectTime = Duration.zero
    }

    public static let shared = SSHStatistics()
    private let totals = Mutex(Totals())

    public var current: Totals { totals.withLock { $0 } }

    func record(_ kind: Kind, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        totals.withLock {
            switch kind {
            case .command: $0.commands += 1; $0.commandTime += elapsed
            case .copy: $0.copies += 1; $0.copyTime += elapsed
            case .connect: $0.connects += 1; $0.connectTime += elapsed
            }
        }
    }
}
