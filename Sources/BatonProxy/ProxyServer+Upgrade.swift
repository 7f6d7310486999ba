import BatonCore
import Foundation
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// How an upgrade went: the process that serves now.
public struct UpgradeResult: Codable, Sendable, Equatable {
    public var oldPid: Int32
    public var newPid: Int32
    /// What the new process said it is ("0.9.0 (abc1234)").
    public var version: String
}

/// What the admin API's `POST /upgrade` calls.
protocol ProxyUpgrading: Sendable {
    func upgrade(binary: String?) async throws -> UpgradeResult
}

/// `baton proxy upgrade`, without a gap: the new binary is started with `--take-over`, gets the
/// listening sockets (SCM_RIGHTS) and the pool, checks that it can serve and says "ready"; this
/// process pauses accepting ("go") and the new one starts on the same sockets ("serving"); only
/// then does this one close its listeners and drain, as on SIGTERM. The two never accept at
/// once; connections that arrive in between wait in the listen queue. If the new process fails
/// at any step it is killed and this one resumes accepting and goes on.
extension ProxyServer: ProxyUpgrading {
    /// What the process taking over received.
    struct Takeover: Sendable {
        var descriptors: [Handover.Role: CInt]
        var state: Handover
        /// Where "ready" goes once this process serves.
        var connection: CInt
    }

    public func upgrade(binary: String?) async throws -> UpgradeResult {
        guard let command = configuration.command, !command.isEmpty else {
            throw BatonError(.invalidArgument, "this proxy was not started by the baton command, so it cannot start its successor")
        }
        let executable = binary ?? command[0]
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw BatonError(.invalidArgument, "upgrade: \(executable) is not an executable file")
        }
        try lifecycle.withLock { state in
            switch state {
            case .serving: state = .upgrading
            case .upgrading: throw BatonError(.conflict, "an upgrade of this proxy is already under way")
            case .stopping: throw BatonError(.conflict, "this proxy is stopping; it is not upgraded")
            }
        }
        var pid: pid_t?
        var adminClosed = false
        var paused = false
        do {
            let path = NSTemporaryDirectory() + "baton-handover-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
            let listener = try ListeningSocket.open(.unix(path: path), backlog: 1)
            defer {
                close(listener)
                unlink(path)
            }
            chmod(path, 0o600)
            logger.notice("upgrade: starting the new process", metadata: ["binary": "\(executable)"])
            let child = try ChildProcess.spawn([executable] + command.dropFirst() + ["--take-over", path], output: nil, detached: false)
            pid = child
            let timeout = configuration.upgradeTimeout
            let connection = try await Self.blocking { try Self.accept(on: listener, from: child, timeout: timeout) }
            defer { close(connection) }
            // From here the new process answers the admin API: a call waits in the socket's
            // queue rather than change a pool that is being handed over.
            closeAdminListeners()
            adminClosed = true
            handedOver.set(true)
            let (roles, fds) = descriptors.withLock { all in
                let roles = all.keys.sorted { $0.rawValue < $1.rawValue }
                return (roles, roles.map { all[$0]! })
            }
            let state = Handover(listeners: roles, backends: pool.snapshot(), assets: assets?.exported() ?? [], pid: getpid())
            let payload = try JSONEncoder().encode(state)
            let answer = try await Self.blocking {
                Handover.setTimeout(timeout, on: connection)
                try Handover.send(descriptors: fds, payload: payload, on: connection)
                return try Handover.readLine(from: connection)
            }
            guard answer.hasPrefix("ready ") else { throw BatonError(.unavailable, "the new process did not take over: \(answer)") }
            // The two never accept from one socket at once: this process stops accepting
            // (connections meanwhile wait in the listen queue), then the new one starts.
            try await setAccepting(false)
            paused = true
            let serving: String
            do {
                serving = try await Self.blocking {
                    try Handover.writeAll(Data("go\n".utf8), to: connection)
                    return try Handover.readLine(from: connection)
                }
            } catch {
                throw BatonError(.unavailable, "the new process did not start serving once told to (\(error))")
            }
            guard serving == "serving" else { throw BatonError(.unavailable, "the new process did not start serving once told to: \(serving)") }
            let version = String(answer.dropFirst(6))
            logger.notice("upgrade: the new process serves; this one drains and exits", metadata: ["pid": "\(child)", "version": "\(version)"])
            stop.yield(())
            return UpgradeResult(oldPid: getpid(), newPid: child, version: version)
        } catch {
            // One that exited was reaped already: its pid may be another process's now.
            if let pid, !(error is NewProcessExited) {
                kill(pid, SIGKILL)
                _ = try? await Self.blocking {
                    var status: Int32 = 0
                    return waitpid(pid, &status, 0)
                }
            }
            if paused { try? await setAccepting(true) }
            handedOver.set(false)
            // The new process may have saved the pool while it was taking over.
            pool.persist()
            var reopened: (any Error)?
            if adminClosed {
                do { try await reopenAdminListeners() } catch { reopened = error }
            }
            lifecycle.withLock { if $0 == .upgrading { $0 = .serving } }
            logger.error("upgrade failed; this process keeps serving", metadata: ["reason": "\(error)"])
            let admin = reopened.map { "; the admin API could not be served again: \($0)" } ?? ""
            throw BatonError(.unavailable, "upgrade failed, the running proxy (pid \(getpid())) keeps serving: \(error)\(admin)")
        }
    }

    /// Pauses or resumes accepting on every proxy listener (the sockets stay open and listening).
    private func setAccepting(_ on: Bool) async throws {
        for channel in proxyListeners.withLock({ $0 }) {
            try await channel.setOption(.autoRead, value: on).get()
        }
    }

    /// Serves the admin API again on the kept duplicates, after a failed upgrade.
    private func reopenAdminListeners() async throws {
        for (role, token) in [(Handover.Role.admin, nil), (.adminTCP, configuration.adminToken)] {
            guard let spare = descriptors.withLock({ $0.removeValue(forKey: role) }) else { continue }
            _ = try await serveAdmin(role, descriptor: spare, token: token)
        }
    }

    /// The new process exited (and was reaped) before it connected.
    struct NewProcessExited: Error, CustomStringConvertible {
        var status: Int32
        var description: String { "the new process exited with status \(status) before taking over" }
    }

    /// Waits for the new process to connect; fails if it exits first or takes too long.
    private static func accept(on listener: CInt, from pid: pid_t, timeout: Duration) throws -> CInt {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 100) > 0 {
                let connection = Glibc.accept(listener, nil, nil)
                if connection >= 0 {
                    _ = fcntl(connection, F_SETFD, FD_CLOEXEC)
                    return connection
                }
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw NewProcessExited(status: ChildProcess.exitCode(status))
            }
        }
        throw BatonError(.timeout, "the new process did not connect within \(timeout.shortDescription)")
    }

    // MARK: The new process

    /// Connects to the old process and receives its listeners and state.
    func receiveHandover(from path: String) async throws -> Takeover {
        let takeover = try await Self.blocking { () throws -> Takeover in
            let address = try SocketAddress(unixDomainSocketPath: path)
            let connection = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard connection >= 0, address.withSockAddr({ connect(connection, $0, socklen_t($1)) }) == 0 else {
                let reason = String(cString: strerror(errno))
                if connection >= 0 { close(connection) }
                throw BatonError(.io, "--take-over \(path): cannot connect: \(reason)")
            }
            Handover.setTimeout(.seconds(30), on: connection)
            let fds: [CInt]
            let payload: Data
            do {
                (fds, payload) = try Handover.receive(on: connection)
            } catch {
                close(connection)
                throw error
            }
            let state: Handover
            do {
                state = try JSONDecoder().decode(Handover.self, from: payload)
            } catch {
                fds.forEach { close($0) }
                close(connection)
                throw BatonError(.io, "--take-over \(path): not a handover from a baton proxy (\(error))")
            }
            guard fds.count == state.listeners.count, fds.allSatisfy(ListeningSocket.isListening) else {
                fds.forEach { close($0) }
                close(connection)
                throw BatonError(.io, "--take-over \(path): expected \(state.listeners.count) listening sockets, got \(fds.count)")
            }
            return Takeover(descriptors: Dictionary(uniqueKeysWithValues: zip(state.listeners, fds)), state: state, connection: connection)
        }
        logger.notice("taking over from the running proxy", metadata: ["pid": "\(takeover.state.pid)", "listeners": "\(takeover.state.listeners.map(\.rawValue))", "backends": "\(takeover.state.backends.count)"])
        return takeover
    }

    /// Checks, before this process accepts anything, that it can serve: a request through its
    /// own pipeline (on a private listener) to a ready backend. Then tells the old process
    /// ("ready VERSION") and waits until it has stopped accepting ("go"). On failure the old
    /// process is told why and keeps serving.
    func checkTakeover(_ takeover: Takeover) async throws {
        do {
            if let ready = pool.list().first(where: { $0.state == .ready }) {
                let check = try await bindProxy(nil, role: nil, tls: nil).channel
                defer { check.close(promise: nil) }
                let path = ready.health?.path ?? configuration.healthCheck.path
                let response = try await HTTP1Client.send(HTTPRequest(.GET, path), to: .tcp(host: "127.0.0.1", port: check.localAddress?.port ?? 0), timeout: .seconds(10))
                guard response.status < 500 else {
                    throw BatonError(.unavailable, "self-check: GET \(path) through the new process answered \(response.status)")
                }
            }
        } catch {
            try? await Self.blocking { try Handover.writeAll(Data("failed: \(error)\n".utf8), to: takeover.connection) }
            close(takeover.connection)
            throw error
        }
        let version = BatonVersion.number + (BatonVersion.commit.map { " (\($0))" } ?? "")
        let go = try await Self.blocking { () throws -> String in
            try Handover.writeAll(Data("ready \(version)\n".utf8), to: takeover.connection)
            return try Handover.readLine(from: takeover.connection)
        }
        guard go == "go" else {
            close(takeover.connection)
            throw BatonError(.unavailable, "--take-over: the running proxy called the upgrade off (\(go))")
        }
    }

    /// Tells the old process this one accepts now; it drains and exits.
    func confirmTakeover(_ takeover: Takeover) async throws {
        defer { close(takeover.connection) }
        try await Self.blocking { try Handover.writeAll(Data("serving\n".utf8), to: takeover.connection) }
        logger.notice("took over: serving", metadata: ["from_pid": "\(takeover.state.pid)"])
    }

    /// Runs blocking socket calls off the event loops and the cooperative pool.
    static func blocking<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
