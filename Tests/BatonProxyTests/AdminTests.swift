import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension LiveProxyTests {
    @Suite struct AdminTests {
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
    }
}
