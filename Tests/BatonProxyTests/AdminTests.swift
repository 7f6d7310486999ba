import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension LiveProxyTests {
    @Suite struct AdminTests {
        /// `baton proxy backends …` is a child of the run command, which has options of the
        /// same names: the child must still get them (the parent used to swallow them).
        @Test func backendsCommandsUseTheirAdminSocketAndHealthOptions() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await LiveProxy.start()
            let socket = proxy.directory + "/admin.sock"
            func baton(_ arguments: [String]) throws -> (status: Int32, output: String) {
                try ChildProcess.run([try BuiltProducts.path("baton"), "proxy", "backends"] + arguments)
            }
            let added = try baton(["add", "web1", web1.address, "--health-path", "/echo", "--health-fall", "5", "--admin-socket", socket])
            #expect(added.status == 0, "\(added.output)")
            let info = try #require(proxy.server.pool.list().first)
            #expect(info.health == HealthCheck(path: "/echo", fall: 5))
            let listed = try baton(["list", "--admin-socket", socket])
            #expect(listed.output.contains("web1"), "\(listed.output)")
            let elsewhere = try baton(["list", "--admin-socket", proxy.directory + "/none.sock"])
            #expect(elsewhere.status != 0)
            #expect(elsewhere.output.contains("none.sock"), "\(elsewhere.output)")
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func tcpAdminRefusesCallsWithoutTheToken() async throws {
            let proxy = try await LiveProxy.start {
                $0.adminListen = .tcp(host: "127.0.0.1", port: 0)
                $0.adminToken = "s3cret"
            }
            let address = try await proxy.server.waitUntilRunning().adminTCP
            let endpoint = Endpoint.tcp(host: "127.0.0.1", port: try #require(address?.port))
            let anonymous = try await HTTP1Client.send(HTTPRequest(.GET, "/backends"), to: endpoint)
            #expect(anonymous.status == 401)
            let wrong = try await AdminClient(endpoint: endpoint, token: "nope").raw(.GET, "/backends")
            #expect(wrong.status == 401)
            #expect(try await AdminClient(endpoint: endpoint, token: "s3cret").list().isEmpty)
            try await proxy.shutdown()
        }

        @Test func tcpAdminCutsSlowAndSilentConnectionsAndGuessersButNotLongCalls() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) {
                $0.adminListen = .tcp(host: "127.0.0.1", port: 0)
                $0.adminToken = "s3cret"
                $0.adminRequestTimeout = .milliseconds(500)
            }
            let address = try await proxy.server.waitUntilRunning().adminTCP
            let endpoint = Endpoint.tcp(host: "127.0.0.1", port: try #require(address?.port))
            // Silent, and trickling a byte every 100 ms (each byte would reset an idle timer).
            let silent = try await RawConnection.connect(to: endpoint)
            let trickler = try await RawConnection.connect(to: endpoint)
            let request = Array("GET /backends HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n".utf8)
            let start = ContinuousClock.now
            for byte in request.prefix(30) where !trickler.closedByPeer {
                try? await trickler.send(bytes: [byte])
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(await eventually(timeout: .seconds(3)) { silent.closedByPeer && trickler.closedByPeer })
            #expect(ContinuousClock.now - start < .seconds(3))
            // A wrong token gets its 401 and the connection is closed after it.
            let guesser = try await RawConnection.connect(to: endpoint)
            try await guesser.send("GET /backends HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\n\r\n")
            let answer = await guesser.waitForClose(timeout: .seconds(2))
            #expect(answer.hasPrefix("HTTP/1.1 401"))
            #expect(guesser.closedByPeer)
            // A call that is answered late (a drain waiting for a slow request) is not cut.
            let slow = Task { try await get("/work?sleep=1500", from: proxy.endpoint) }
            try await Task.sleep(for: .milliseconds(200))
            let drain = try await AdminClient(endpoint: endpoint, token: "s3cret").drain("web1", timeout: .seconds(5))
            #expect(drain.cut == 0)
            #expect(try await slow.value.status == 200)
            for connection in [silent, trickler, guesser] { await connection.close() }
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func backendStatsGiveTheP99ThatClientsSaw() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            var latencies: [Double] = []
            for index in 0..<200 {
                let start = ContinuousClock.now
                let response = try await get("/work?sleep=\(index % 33 == 0 ? 200 : 5)", from: proxy.endpoint)
                #expect(response.status == 200)
                latencies.append((ContinuousClock.now - start).seconds)
            }
            latencies.sort()
            let clients = latencies[Int((Double(latencies.count) * 0.99).rounded(.up)) - 1]
            let stats = try #require(try await proxy.admin.list().first?.stats)
            #expect(stats.requests == 200)
            #expect(stats.serverErrors == 0)
            let p99 = try #require(stats.percentile(0.99)).seconds
            #expect(abs(p99 - clients) / clients < 0.10, "proxy p99 \(p99), clients' \(clients)")
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func tcpAdminWithoutATokenIsRejectedAtStart() {
            #expect(throws: BatonError.self) {
                try ProxyServer(configuration: ProxyConfiguration(adminListen: .tcp(host: "127.0.0.1", port: 0)))
            }
        }

        @Test func restartRestoresTheBackendList() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let web2 = try await TestBackend.start(name: "web2")
            let directory = TemporaryDirectory.make(prefix: "baton-restart")
            let first = try await startProxy(backends: [web1, web2], directory: directory)
            _ = try await first.admin.drain("web2")
            try await first.shutdown()

            let second = try await LiveProxy.start(directory: directory)
            let backends = try await second.admin.list()
            #expect(backends.map(\.name) == ["web1", "web2"])
            #expect(backends.map(\.state) == [.ready, .drained])
            // Restored ready: it serves at once, without waiting for health checks to rise.
            #expect(try await get("/", from: second.endpoint)[header: "x-baton-backend"] == "web1")
            try await second.shutdown()
            await web1.stop()
            await web2.stop()
        }

        @Test func adminErrorsAreClear() async throws {
            let proxy = try await LiveProxy.start()
            let admin = proxy.admin
            await #expect(throws: BatonError.self) { _ = try await admin.drain("ghost") }
            let bad = try await admin.raw(.POST, "/backends", body: .init(string: "{not json"))
            #expect(bad.status == 400)
            #expect(bad.bodyString.contains("expected JSON"))
            let badAddress = try await admin.raw(.POST, "/backends", body: .init(string: #"{"name":"x","address":"nowhere"}"#))
            #expect(badAddress.status == 400)
            #expect(badAddress.bodyString.contains("expected host:port"))
            let unknown = try await admin.raw(.GET, "/nothing")
            #expect(unknown.status == 404)
            try await proxy.shutdown()
        }

        @Test func metricsCountRequestsByBackendAndStatus() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            for _ in 0..<3 { _ = try await get("/", from: proxy.endpoint) }
            let metrics = try await proxy.admin.metrics()
            #expect(metrics.contains(#"baton_proxy_requests_total{backend="web1",status="200"} 3"#), "\(metrics)")
            #expect(metrics.contains("baton_proxy_request_duration_seconds_bucket"))
            #expect(metrics.contains(#"baton_proxy_backend_state{backend="web1",state="ready"} 1"#))
            #expect(metrics.contains("baton_proxy_requests_in_flight 0"))
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func restoredBackendThatWasNotReadyMustPassHealthChecksAgain() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let sick = try await TestBackend.start(name: "sick")
            sick.setHealthy(false)
            let directory = TemporaryDirectory.make(prefix: "baton-restore")
            let first = try await startProxy(backends: [web1], directory: directory)
            _ = try await first.admin.add(name: "sick", address: sick.address, wait: false)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await first.admin.backend("sick").state != .ready)
            try await first.shutdown()

            let second = try await LiveProxy.start(directory: directory)
            #expect(try await second.admin.backend("web1").state == .ready)
            #expect(try await second.admin.backend("sick").state != .ready)
            for _ in 0..<20 { #expect(try await get("/", from: second.endpoint)[header: "x-baton-backend"] == "web1") }
            #expect(sick.requestsServed == 0)
            try await second.shutdown()
            await web1.stop()
            await sick.stop()
        }

        @Test func concurrentAdminCallsLeaveAWholeStateFile() async throws {
            let directory = TemporaryDirectory.make(prefix: "baton-state")
            let proxy = try await LiveProxy.start(directory: directory)
            let admin = proxy.admin
            // 200 calls at once: adds of 50 backends (never healthy: nothing listens there),
            // drains and readies of them, in any order.
            let failedAdds = await withTaskGroup(of: String?.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let name = "b\(index % 50)"
                        switch index / 50 {
                        case 0:
                            do { _ = try await admin.add(name: name, address: "127.0.0.1:\(1 + index % 50)", wait: false) } catch { return "\(name): \(error)" }
                        case 1: _ = try? await admin.drain(name, timeout: .milliseconds(10))
                        case 2: _ = try? await admin.raw(.POST, "/backends/\(name)/ready")
                        default: _ = try? await admin.list()
                        }
                        return nil
                    }
                }
                return await group.compactMap { $0 }.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(failedAdds.isEmpty, "\(failedAdds)")
            let listed = try await admin.list()
            try await proxy.shutdown()
            let saved = try BackendStore(path: directory + "/backends.json").load()
            #expect(saved.count == 50)
            #expect(Set(saved.map(\.name)) == Set(listed.map(\.name)))
            #expect(saved.allSatisfy { $0.ready == false }, "a backend that never passed a check was saved as ready")
        }

        /// Hostile admin input: nothing may crash or hang the proxy.
        @Test func adminFuzz() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            var random = SystemRandomNumberGenerator()
            let segments = ["backends", "web1", "drain", "ready", "metrics", "up", "..", "%", "%00", "?", "=", "&", "?=", "?timeout=",
                "?timeout=1e300", "?timeout=-1", "?timeout=nan", "?timeout=99999999999h", "%C3%A9", "%FF%FE", String(repeating: "a", count: 5000), ""]
            let bodies = ["", "{", "null", "[]", #"{"name":1}"#, #"{"name":"x","address":"127.0.0.1:99999"}"#,
                #"{"name":"","address":":1"}"#, #"{"name":"web1","address":"127.0.0.1:1","timeout":"1e300"}"#,
                #"{"name":"z","address":"[::1]:1","wait":false}"#, String(repeating: "[", count: 10000)]
            let methods: [HTTPMethod] = [.GET, .POST, .DELETE, .PUT, .PATCH, .HEAD, .OPTIONS]
            let start = ContinuousClock.now
            var calls = 0
            while calls < 400 && ContinuousClock.now - start < .seconds(20) {
                let path = "/" + (0..<Int.random(in: 1...4, using: &random)).map { _ in segments.randomElement(using: &random)! }.joined(separator: "/")
                let method = methods.randomElement(using: &random)!
                let body = method == .POST ? bodies.randomElement(using: &random)! : ""
                let response = try await proxy.admin.raw(method, path, body: .init(string: body))
                #expect(response.status < 500 || response.status == 504, "\(method) \(path) \(body.prefix(40)) → \(response.status) \(response.bodyString.prefix(200))")
                calls += 1
                // Put web1 back when a call drained or removed it, so the data path stays checked.
                if try await proxy.admin.list().first(where: { $0.name == "web1" }) == nil {
                    _ = try await proxy.admin.add(name: "web1", address: web1.address)
                } else if try await proxy.admin.backend("web1").state == .drained {
                    _ = try await proxy.admin.raw(.POST, "/backends/web1/ready")
                }
            }
            #expect(calls >= 100)
            #expect(try await proxy.admin.raw(.GET, "/up").status == 200)
            #expect(try await eventually { try await get("/", from: proxy.endpoint).status == 200 })
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
