import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `baton proxy upgrade` with real `baton` processes: the listening sockets pass to the new
/// process without ever closing, the pool goes with them, and a new binary that fails leaves
/// the old process serving.
@Suite(.serialized) struct UpgradeTests {
    /// A `baton proxy` process. The processes an upgrade starts are not ours to wait for, so
    /// its process group is killed at the end.
    final class ProxyProcess: Sendable {
        let directory: String
        let port: Int
        let pid: pid_t
        var admin: AdminClient { AdminClient(endpoint: .unix(path: directory + "/admin.sock"), timeout: .seconds(60)) }
        var log: String { (try? String(contentsOfFile: directory + "/proxy.log", encoding: .utf8)) ?? "" }

        init(
            backends: [TestBackend], extra: [String] = [], environment: [String: String] = [:],
            in directory: String = TemporaryDirectory.make(prefix: "baton-upgrade"), executable: String? = nil
        ) async throws {
            self.directory = directory
            port = try LocalPort.free()
            let arguments = [try executable ?? BuiltProducts.path("baton"), "proxy", "--listen", "127.0.0.1:\(port)", "--admin-socket", directory + "/admin.sock",
                             "--state-file", directory + "/backends.json", "--threads", "1", "--health-interval", "200ms", "--shutdown-timeout", "10s"]
                + backends.map { "--backend=\($0.name)=\($0.address)" } + extra
            // A process group of its own: every process an upgrade starts is in it, also one a
            // failed test never heard of, and `stop` kills the group.
            pid = try ChildProcess.spawn(arguments, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, output: directory + "/proxy.log", detached: true)
            let admin = self.admin
            let up = await eventually(timeout: .seconds(20)) {
                ((try? await admin.list()) ?? []).filter { $0.state == .ready }.count == backends.count
            }
            guard up else {
                stop()
                throw BatonError(.timeout, "the proxy did not come up: \(log)")
            }
        }

        /// Upgrades through the admin API; a failure carries the processes' log.
        func upgrade(binary: String? = nil) async throws -> UpgradeResult {
            do {
                return try await admin.upgrade(binary: binary)
            } catch {
                throw BatonError(.unavailable, "\(error)\n--- proxy log ---\n\(log)")
            }
        }

        /// Whether the first process (our child) has exited, within `timeout`.
        func firstExited(within timeout: Duration) async -> Bool {
            await eventually(timeout: timeout) {
                var status: Int32 = 0
                return waitpid(pid, &status, WNOHANG) == pid
            }
        }

        func stop() {
            kill(-pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            if ProcessInfo.processInfo.environment["KEEP"] == nil { try? FileManager.default.removeItem(atPath: directory) }
        }
    }

    /// Clients connecting in a tight loop, each request on a new connection, counting every
    /// failure by what it was.
    final class ConnectLoad: Sendable {
        let served = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let refused = Atomic<Int>(0)
        let connects = Atomic<Int>(0)
        let running = Atomic<Bool>(true)
        let start = ContinuousClock.now
        func note(_ failure: String) { failures.withLock { $0.append("\(ContinuousClock.now - start): \(failure)") } }

        func run(port: Int) async {
            await withDiscardingTaskGroup { group in
                for _ in 0..<4 {
                    group.addTask {
                        while self.running.load(ordering: .relaxed) {
                            do {
                                let response = try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(10))
                                if response.status == 200 {
                                    self.served.wrappingAdd(1, ordering: .relaxed)
                                } else {
                                    self.note("status \(response.status)")
                                }
                            } catch {
                                self.note("\(error)")
                            }
                        }
                    }
                }
                // Bare connects on a thread of their own: a refusal shows as ECONNREFUSED here.
                group.addTask {
                    try? await NIOThreadPool.singleton.runIfActive {
                        while self.running.load(ordering: .relaxed) {
                            let fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
                            var address = sockaddr_in()
                            address.sin_family = sa_family_t(AF_INET)
                            address.sin_port = in_port_t(UInt16(port).bigEndian)
                            address.sin_addr.s_addr = inet_addr("127.0.0.1")
                            let result = withUnsafePointer(to: &address) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                            }
                            if result != 0 { self.refused.wrappingAdd(1, ordering: .relaxed) } else { self.connects.wrappingAdd(1, ordering: .relaxed) }
                            close(fd)
                        }
                    }
                }
            }
        }
    }

    @Test func upgradeUnderLoadRefusesNothingAndKeepsThePool() async throws {
        let one = try await TestBackend.start(name: "one")
        let two = try await TestBackend.start(name: "two")
        let three = try await TestBackend.start(name: "three")
        let proxy = try await ProxyProcess(backends: [one, two, three])
        defer { proxy.stop() }
        _ = try await proxy.admin.drain("three", timeout: .seconds(5))

        let load = ConnectLoad()
        let loading = Task { await load.run(port: proxy.port) }
        try await Task.sleep(for: .milliseconds(500))
        // A slow request in flight through the old process finishes there.
        let slow = Task { try await HTTP1Client.send(HTTPRequest(.GET, "/?sleep=1500"), to: .tcp(host: "127.0.0.1", port: proxy.port), timeout: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        let first = try await proxy.upgrade()
        #expect(first.oldPid == proxy.pid)
        #expect(first.newPid != proxy.pid)
        #expect(first.version.hasPrefix(BatonVersion.number), "\(first.version)")
        #expect(try await slow.value.status == 200)
        #expect(await proxy.firstExited(within: .seconds(15)), "the old process did not exit after handing over")

        // The new process was started with the same command line and upgrades again.
        try await Task.sleep(for: .milliseconds(300))
        let second = try await proxy.upgrade()
        #expect(second.oldPid == first.newPid)
        #expect(second.newPid != first.newPid)
        try await Task.sleep(for: .milliseconds(500))
        load.running.store(false, ordering: .relaxed)
        await loading.value

        #expect(load.refused.load(ordering: .relaxed) == 0, "connections refused during the upgrade")
        #expect(load.failures.withLock { $0 }.isEmpty, "\(load.failures.withLock { Array($0.prefix(5)) })")
        #expect(load.served.load(ordering: .relaxed) > 100)
        #expect(load.connects.load(ordering: .relaxed) > 100)
        // The pool came along, drained backend included, and the new process keeps saving it.
        let backends = try await proxy.admin.list()
        #expect(Dictionary(uniqueKeysWithValues: backends.map { ($0.name, $0.state) }) == ["one": .ready, "two": .ready, "three": .drained])
        #expect(three.requestsServed == 0, "a drained backend took traffic after the handover")
        _ = try await proxy.admin.markReady("three")
        let saved = try String(contentsOfFile: proxy.directory + "/backends.json", encoding: .utf8)
        #expect(!saved.contains("drained"), "\(saved)")
        for backend in [one, two, three] { await backend.stop() }
    }

    /// A new process that takes the listeners, says it is ready and then dies before it
    /// serves, speaking the handover protocol from outside (Python's SCM_RIGHTS).
    static let dyingAfterGo = """
        #!/usr/bin/env python3
        import socket, sys
        path = sys.argv[sys.argv.index("--take-over") + 1]
        connection = socket.socket(socket.AF_UNIX)
        connection.connect(path)
        marker, fds, flags, address = socket.recv_fds(connection, 1, 8)
        def read(count):
            data = b""
            while len(data) < count:
                data += connection.recv(count - len(data))
            return data
        read(int.from_bytes(read(8), "big"))
        connection.sendall(b"ready fake 0.0\\n")
        line = b""
        while not line.endswith(b"\\n"):
            line += connection.recv(1)
        sys.exit(5 if line == b"go\\n" else 6)
        """

    @Test func aFailingNewBinaryLeavesTheOldOneServing() async throws {
        let backend = try await TestBackend.start(name: "app")
        let adminPort = try LocalPort.free()
        let proxy = try await ProxyProcess(backends: [backend], extra: ["--admin-listen", "127.0.0.1:\(adminPort)", "--admin-token", "secret"])
        defer { proxy.stop() }
        let broken = proxy.directory + "/broken-baton"
        try "#!/bin/sh\necho 'cannot start' >&2\nexit 3\n".write(toFile: broken, atomically: true, encoding: .utf8)
        chmod(broken, 0o755)
        let dying = proxy.directory + "/dying-baton"
        try Self.dyingAfterGo.write(toFile: dying, atomically: true, encoding: .utf8)
        chmod(dying, 0o755)
        let notExecutable = proxy.directory + "/plain-file"
        try "".write(toFile: notExecutable, atomically: true, encoding: .utf8)

        let load = ConnectLoad()
        let loading = Task { await load.run(port: proxy.port) }
        try await Task.sleep(for: .milliseconds(300))
        await #expect { try await proxy.upgrade(binary: broken) } throws: { error in
            "\(error)".contains("exited with status 3") && "\(error)".contains("keeps serving")
        }
        // Past "go" this process had paused accepting: it resumes, and nothing was refused.
        await #expect { try await proxy.upgrade(binary: dying) } throws: { error in
            "\(error)".contains("did not start serving") && "\(error)".contains("keeps serving")
        }
        await #expect { try await proxy.upgrade(binary: notExecutable) } throws: { error in
            "\(error)".contains("not an executable file")
        }
        // A TCP token does not choose the program the proxy runs.
        let remote = AdminClient(endpoint: .tcp(host: "127.0.0.1", port: adminPort), token: "secret")
        await #expect { try await remote.upgrade(binary: broken) } throws: { error in
            "\(error)".contains("over the admin Unix socket only")
        }
        // SIGHUP (systemctl reload) without TLS is not the end of the proxy.
        kill(proxy.pid, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        load.running.store(false, ordering: .relaxed)
        await loading.value
        #expect(load.refused.load(ordering: .relaxed) == 0)
        #expect(load.failures.withLock { $0 }.isEmpty, "\(load.failures.withLock { Array($0.prefix(5)) })")
        #expect(load.served.load(ordering: .relaxed) > 50)

        // Still the same process, still serving, and its admin API answers.
        var status: Int32 = 0
        #expect(waitpid(proxy.pid, &status, WNOHANG) == 0)
        let response = try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: .tcp(host: "127.0.0.1", port: proxy.port))
        #expect(response.status == 200)
        #expect(try await proxy.admin.list().map(\.name) == ["app"])
        #expect(try await remote.list().map(\.name) == ["app"])
        // And a good binary still takes over afterwards, over TCP too.
        _ = try await remote.upgrade()
        #expect(await proxy.firstExited(within: .seconds(15)))
        await backend.stop()
    }

    /// Without --binary the upgrade runs the path the proxy was started from as it is now: a
    /// symbolic link switched to a new release is followed.
    @Test func theStartPathIsFollowedAtTheUpgrade() async throws {
        let backend = try await TestBackend.start(name: "app")
        let directory = TemporaryDirectory.make(prefix: "baton-upgrade")
        let link = directory + "/current-baton"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: try BuiltProducts.path("baton"))
        let proxy = try await ProxyProcess(backends: [backend], in: directory, executable: link)
        defer { proxy.stop() }
        let next = directory + "/next-release"
        try "#!/bin/sh\nexit 7\n".write(toFile: next, atomically: true, encoding: .utf8)
        chmod(next, 0o755)
        try FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: next)
        await #expect { try await proxy.upgrade() } throws: { error in "\(error)".contains("exited with status 7") }
        await backend.stop()
    }

    /// Every listener goes across: HTTPS (with its certificates read again by the new process)
    /// and the redirect listener, and the old process closes them all before the new one accepts.
    @Test func httpsAndRedirectListenersGoAcross() async throws {
        let backend = try await TestBackend.start(name: "app")
        let certificates = TemporaryDirectory.make(prefix: "baton-upgrade-tls")
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        let ca = try TestCertificates.makeCA(in: certificates)
        let site = try ca.issue("site", names: ["site.test"])
        let (tlsPort, redirectPort) = (try LocalPort.free(), try LocalPort.free())
        let proxy = try await ProxyProcess(backends: [backend], extra: [
            "--tls-listen", "127.0.0.1:\(tlsPort)", "--tls-certificate", "\(site.certificate),\(site.key)", "--redirect-listen", "127.0.0.1:\(redirectPort)",
        ])
        defer { proxy.stop() }
        func curl(_ url: String) async throws -> String {
            let result = try await ChildProcess.run(
                ["/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", ca.caCertificate, "--resolve", "site.test:\(tlsPort):127.0.0.1",
                 "--resolve", "site.test:\(redirectPort):127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", url],
                timeout: .seconds(20))
            return result.output + result.errors
        }
        #expect(try await curl("https://site.test:\(tlsPort)/") == "200 ")

        _ = try await proxy.upgrade()
        #expect(await proxy.firstExited(within: .seconds(15)), "the old process kept a listener")
        #expect(try await curl("https://site.test:\(tlsPort)/") == "200 ")
        #expect(try await curl("http://site.test:\(redirectPort)/page") == "308 https://site.test:\(tlsPort)/page")
        await backend.stop()
    }

    /// Under systemd (Type=notify, NotifyAccess=all) the proxy says it is ready, and the process
    /// that takes over says it is the service's main process now.
    @Test func systemdIsToldWhichProcessIsTheService() async throws {
        let backend = try await TestBackend.start(name: "app")
        let directory = TemporaryDirectory.make(prefix: "baton-upgrade")
        let notifications = directory + "/notify.sock"
        let fd = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        let address = try SocketAddress(unixDomainSocketPath: notifications)
        #expect(address.withSockAddr { bind(fd, $0, socklen_t($1)) } == 0)
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func received() -> String {
            var buffer = [UInt8](repeating: 0, count: 512)
            let count = recv(fd, &buffer, buffer.count, 0)
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : "nothing (\(String(cString: strerror(errno))))"
        }
        let proxy = try await ProxyProcess(backends: [backend], environment: ["NOTIFY_SOCKET": notifications], in: directory)
        defer { proxy.stop() }
        #expect(received() == "MAINPID=\(proxy.pid)\nREADY=1")
        let result = try await proxy.upgrade()
        #expect(received() == "MAINPID=\(result.newPid)\nREADY=1")
        await backend.stop()
    }

    /// `baton proxy upgrade --proxy A --proxy B`: one at a time, stopping at the first failure.
    @Test func severalProxiesOneAtATime() async throws {
        let backend = try await TestBackend.start(name: "app")
        let a = try await ProxyProcess(backends: [backend])
        defer { a.stop() }
        let b = try await ProxyProcess(backends: [backend])
        defer { b.stop() }
        let targets = ["--proxy", "unix:\(a.directory)/admin.sock", "--proxy", "unix:\(b.directory)/admin.sock"]
        let run = try BatonCLI.run(["proxy", "upgrade", "--json"] + targets)
        #expect(run.status == 0, "\(run.output)")
        struct Upgraded: Decodable { var proxy: String; var result: UpgradeResult }
        let upgraded = try JSONDecoder().decode([Upgraded].self, from: Data(run.output.utf8))
        #expect(upgraded.map(\.result.oldPid) == [a.pid, b.pid])
        #expect(await a.firstExited(within: .seconds(15)))
        #expect(await b.firstExited(within: .seconds(15)))

        // The first fails: the second is left as it is, and the message says so.
        let failing = try BatonCLI.run(["proxy", "upgrade", "--binary", "/bin/false"] + targets)
        #expect(failing.status != 0)
        #expect(failing.output.contains("unix:\(a.directory)/admin.sock") && failing.output.contains("not upgraded: unix:\(b.directory)/admin.sock"), "\(failing.output)")
        #expect(try await b.admin.list().count == 1)
        await backend.stop()
    }
}
