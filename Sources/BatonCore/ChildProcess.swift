import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts programs with posix_spawn, with our descriptors closed for them (a long-lived child
/// holding a pipe end or a lock of ours would keep a reader waiting or a lock held) and output
/// appended to a file. Foundation's Process is not used for this: a daemon started by the child
/// (pg_ctl's server) inherits its bookkeeping and its wait never ends.
public enum ChildProcess {
    /// Spawns `arguments`; `detached` puts it in a new session so it outlives us. Standard input
    /// is read from `input`; standard error goes to `errors`, or with the output when nil; with no
    /// `output`, both are ours.
    public static func spawn(
        _ arguments: [String], environment: [String: String]? = nil, input: String = "/dev/null", output: String?, errors: String? = nil,
        detached: Bool
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
        if let output {
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if let errors {
                posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            } else {
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16((detached ? posixSpawnSetsid : 0) | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let env = environment ?? ProcessInfo.processInfo.environment
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        markDescriptorsCloseOnExec()
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw BatonError(.io, "cannot start \(arguments.joined(separator: " ")): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Whether `pid` is alive: it exists and is not a zombie (a process that is not our child
    /// is reaped by someone else, or not at all in a container without an init).
    public static func isRunning(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    /// Runs `arguments` to the end; returns the exit status and what it printed.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "baton-child-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(outputPath) }
        let pid = try spawn(arguments, output: outputPath, detached: false)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (exitCode(status), output)
    }

    /// Runs `arguments` to the end without holding a thread, standard input from the file
    /// `input`; returns the exit code (nil when it ran past `timeout` and was killed), what it
    /// printed and, apart, what it printed on standard error. Files, not pipes: a daemon the
    /// child leaves behind (ssh's backgrounded master) cannot hold a read open.
    public static func run(
        _ arguments: [String], input: String = "/dev/null", timeout: Duration
    ) async throws -> (status: Int32?, output: String, errors: String) {
        let base = NSTemporaryDirectory() + "baton-child-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        defer {
            unlink(base + ".out")
            unlink(base + ".err")
        }
        let pid = try spawn(arguments, input: input, output: base + ".out", errors: base + ".err", detached: false)
        let status = try await wait(pid, timeout: timeout, group: false)
        let output = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        return (status, output, errors)
    }

    /// Waits for `pid` (a child of ours) without holding a thread; returns its exit code (128 +
    /// the signal when one killed it), or nil when it was still running after `timeout` and was
    /// killed: its process group too when `group` (a detached child leads one). Cancelling the
    /// wait kills it too.
    public static func wait(_ pid: pid_t, timeout: Duration, group: Bool) async throws -> Int32? {
        let start = ContinuousClock.now
        var status: Int32 = 0
        var pause = Duration.milliseconds(1)
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return exitCode(status) }
            if result == -1 && errno != EINTR { throw BatonError(.io, "waiting for pid \(pid): \(String(cString: strerror(errno)))") }
            if ContinuousClock.now - start >= timeout {
                kill(group ? -pid : pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                return nil
            }
            // Short commands are seen within a few ms; long ones are polled every 20 ms.
            do {
                try await Task.sleep(for: pause)
            } catch {
                // Cancelled: the child must not outlive the wait (nor stay a zombie).
                kill(group ? -pid : pid, SIGKILL)
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                throw error
            }
            // 1 ms doubling to 4 ms for the first half second, then 20 ms.
            pause = ContinuousClock.now - start < .milliseconds(500) ? min(pause * 2, .milliseconds(4)) : .milliseconds(20)
        }
    }

    /// SIGTERM to a child this process spawned, then waits for it to end (no zombie left).
    public static func terminate(_ pid: pid_t) {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    /// The shell's convention: the exit status, or 128 + the signal that ended it.
    public static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// glibc's POSIX_SPAWN_SETSID (0x80), hidden behind _GNU_SOURCE in its header.
    static let posixSpawnSetsid: Int32 = 0x80

    /// posix_spawn has no portable "close from 3", so mark every descriptor close-on-exec first.
    static func markDescriptorsCloseOnExec() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for name in names {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }
}
