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
/// listening sockets (SCM_RIGHTS) and the pool, checks that it can serve and says "ready"; only
/// then does this process stop accepting ("go") and drain, as on SIGTERM, while the new one
/// accepts from the same sockets ("serving"). The two never accept at once; connections that
/// arrive in between wait in the listen queue. Until "ready" this process serves as before,
/// and if the new one fails it is killed and this one goes on.
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
        guard upgrading.withLock({ busy in defer { busy = true }; return !busy }) else {
            throw BatonError(.conflict, "an upgrade of this proxy is already under way")
        }
        let path = NSTemporaryDirectory() + "baton-handover-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let listener = try ListeningSocket.open(.unix(path: path), backlog: 1)
        defer {
            close(listener)
            unlink(path)
        }
        chmod(path, 0o600)
        logger.notice("upgrade: starting the new process", metadata: ["binary": "\(executable)"])
        let pid = try ChildProcess.spawn([executable] + command.dropFirst() + ["--take-over", path], output: nil, detached: false)
        var adminClosed = false
        var committed = false
        do {
            let timeout = configuration.upgradeTimeout
            let connection = try await Self.blocking { try Self.accept(on: listener, from: pid, timeout: timeout) }
            defer { close(connection) }
            // From here the new process answers the admin API: a call waits in the socket's
            // queue rather than change a pool that is being handed over.
            closeAdminListeners()
            adminClosed = true
            let (roles, fds) = descriptors.withLock { all in
                let roles = all.keys.sorted { $0.rawValue < $1.rawValue }
                return (roles, roles.map { all[$0]! })
            }
            let state = Handover(listeners: roles, backends: pool.snapshot(), assets: assets?.exported() ?? [], pid: getpid())
            let payload = try JSONEncoder().encode(state)
            handedOver.set(true)
            let answer = try await Self.blocking {
                Handover.setTimeout(timeout, on: connection)
                try Handover.send(descriptors: fds, payload: payload, on: connection)
                return try Handover.readLine(from: connection)
            }
            guard answer.hasPrefix("ready ") else { throw BatonError(.unavailable, "the new process did not take over: \(answer)") }
            let version = String(answer.dropFirst(6))
            // Past this point there is no going back: this process stops accepting, and the new
            // one starts once it has (connections meanwhile wait in the listen queue).
            committed = true
            let stopped = group.any().makePromise(of: Void.self)
            stop.yield(stopped)
            logger.debug("upgrade: waiting for the listeners to close")
            try await stopped.futureResult.get()
            logger.debug("upgrade: listeners closed; telling the new process to accept")
            let serving = try? await Self.blocking {
                try Handover.writeAll(Data("go\n".utf8), to: connection)
                return try Handover.readLine(from: connection)
            }
            guard serving == "serving" else {
                logger.critical("upgrade: the new process stopped answering after it was told to serve", metadata: ["pid": "\(pid)"])
                throw BatonError(.unavailable, "upgrade: the new process (pid \(pid)) passed its self-check but did not confirm it serves; check its log")
            }
            logger.notice("upgrade: the new process serves; this one drains and exits", metadata: ["pid": "\(pid)", "version": "\(version)"])
            return UpgradeResult(oldPid: getpid(), newPid: pid, version: version)
        } catch where !committed {
            handedOver.set(false)
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            if adminClosed { try await reopenAdminListeners() }
            upgrading.withLock { $0 = false }
            logger.error("upgrade failed; this process keeps serving", metadata: ["reason": "\(error)"])
            throw BatonError(.unavailable, "upgrade failed, the running proxy (pid \(getpid())) keeps serving: \(error)")
        }
    }

    /// Serves the admin API again on the kept duplicates, after a failed upgrade.
    private func reopenAdminListeners() async throws {
        for (role, token) in [(Handover.Role.admin, nil), (.adminTCP, configuration.adminToken)] {
            guard let spare = descriptors.withLock({ $0.removeValue(forKey: role) }) else { continue }
            _ = try await serveAdmin(role, descriptor: spare, token: token)
        }
    }

    /// Waits for the new process to connect; fails if it exits first or takes too long.
    private static func accept(on listener: CInt, from pid: pid_t, timeout: Duration) throws -> CInt {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 100) > 0 {
                let connection = Glibc.accept(listener, nil, nil)
                if connection >= 0 { return connection }
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw BatonError(.unavailable, "the new process exited with status \(ChildProcess.exitCode(status)) before taking over")
            }
        }
        throw BatonError(.timeout, "the new process did not connect within \(timeout.shortDescription)")
    }

    // MARK: The new process

    /// Connects to the old process and receives its listeners and state.
    func receiveHandover(from path: String) async throws -> Takeover {
        let takeover = try await Self.blocking { () throws -> Takeover in
            let connection = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            let address = try SocketAddress(unixDomainSocketPath: path)
            guard address.withSockAddr({ connect(connection, $0, socklen_t($1)) }) == 0 else {
                close(connection)
                throw BatonError(.io, "--take-over \(path): cannot connect: \(String(cString: strerror(errno)))")
            }
            Handover.setTimeout(.seconds(30), on: connection)
            let (fds, payload) = try Handover.receive(on: connection)
            let state: Handover
            do {
                state = try JSONDecoder().decode(Handover.self, from: payload)
            } catch {
                fds.forEach { close($0) }
                throw BatonError(.io, "--take-over \(path): not a handover from a baton proxy (\(error))")
            }
            guard fds.count == state.listeners.count, fds.allSatisfy(ListeningSocket.isListening) else {
                fds.forEach { close($0) }
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
