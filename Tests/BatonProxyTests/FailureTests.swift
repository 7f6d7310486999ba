import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension LiveProxyTests {
    @Suite struct FailureTests {
        @Test func killedBackendFailsNoIdempotentRequest() async throws {
            let backends = [
                try await TestBackend.start(name: "web1"), try await TestBackend.start(name: "web2"),
                try await TestBackend.start(name: "web3"),
            ]
            let proxy = try await startProxy(backends: backends)
            let load = LoadGenerator.start(against: proxy.endpoint, concurrency: 8) { _, index in
                HTTPRequest(.GET, index % 3 == 0 ? "/?sleep=30" : "/item/\(index)")
            }
            #expect(await eventually { load.completed > 300 })
            await backends[0].kill()
            let before = load.completed
            #expect(await eventually { load.completed > before + 500 })
            let result = await load.stop()

            #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
            #expect(try await proxy.admin.backend("web1").state == .unhealthy)
            try await proxy.shutdown()
            for backend in backends.dropFirst() { await backend.stop() }
        }

        @Test func connectFailureIsRetriedEvenForPost() async throws {
            // A backend saved as ready whose server is gone: the proxy learns it on connect.
            let directory = TemporaryDirectory.make(prefix: "baton-retry")
            let live = try await TestBackend.start(name: "live")
            let dead = try await TestBackend.start(name: "dead")
            await dead.stop()
            try BackendStore(path: directory + "/backends.json").save([
                PersistedBackend(name: "dead", address: dead.address, state: .enabled, ready: true),
                PersistedBackend(name: "live", address: live.address, state: .enabled, ready: true),
            ], sequence: 1)
            let proxy = try await LiveProxy.start(directory: directory)
            for index in 0..<20 {
                let response = try await HTTP1Client.send(HTTPRequest(.POST, "/upload", body: "n=\(index)"), to: proxy.endpoint)
                #expect(response.status == 200)
                #expect(response[header: "x-baton-backend"] == "live")
            }
            #expect(proxy.server.pool.info(name: "dead")?.state == .unhealthy)
            let metrics = try await proxy.admin.metrics()
            #expect(metrics.contains("baton_proxy_retries_total"))
            try await proxy.shutdown()
            await live.stop()
        }

        @Test func postIsNotRetriedWhenTheConnectionBreaksAfterSending() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let post = Task { try await HTTP1Client.send(HTTPRequest(.POST, "/hang", body: "x"), to: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            await web1.kill()
            let response = try await post.value
            #expect(response.status == 502)
            #expect(response[header: "x-baton-error"] == "backend-failed")
            try await proxy.shutdown()
        }

        @Test func heldRequestIsReleasedWhenABackendBecomesReady() async throws {
            let proxy = try await LiveProxy.start()
            let web1 = try await TestBackend.start(name: "web1")
            let start = ContinuousClock.now
            let held = Task { try await get("/", from: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.heldRequests == 1 })
            try await Task.sleep(for: .milliseconds(300))
            _ = try await proxy.admin.add(name: "web1", address: web1.address)
            let response = try await held.value
            #expect(response.status == 200)
            #expect(response.bodyString == "hello from web1\n")
            #expect(ContinuousClock.now - start >= .milliseconds(300))
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func holdTimesOutWith503() async throws {
            let proxy = try await LiveProxy.start { $0.maxHold = .milliseconds(300) }
            let response = try await get("/", from: proxy.endpoint)
            #expect(response.status == 503)
            #expect(response[header: "x-baton-error"] == "no-backend")
            #expect(response.bodyString.contains("no backend became ready within 300ms"))
            try await proxy.shutdown()
        }

        @Test func healthChecksTakeABackendOutAndBringItBack() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let web2 = try await TestBackend.start(name: "web2")
            let proxy = try await startProxy(backends: [web1, web2])
            web1.setHealthy(false)
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.state == .unhealthy })
            for _ in 0..<10 { #expect(try await get("/", from: proxy.endpoint)[header: "x-baton-backend"] == "web2") }
            web1.setHealthy(true)
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.state == .ready })
            var seen = Set<String>()
            for _ in 0..<10 { seen.insert(try await get("/", from: proxy.endpoint)[header: "x-baton-backend"] ?? "") }
            #expect(seen == ["web1", "web2"])
            try await proxy.shutdown()
            await web1.stop()
            await web2.stop()
        }

        @Test func addingAnUnhealthyBackendFailsAndLeavesThePoolAsItWas() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            web1.setHealthy(false)
            let proxy = try await LiveProxy.start()
            await #expect(throws: BatonError.self) {
                _ = try await proxy.admin.add(name: "web1", address: web1.address, timeout: .milliseconds(500))
            }
            #expect(try await proxy.admin.list().isEmpty)
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func gracefulShutdownClosesIdleKeepAliveConnectionsAtOnce() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let idle = try await RawConnection.connect(to: proxy.endpoint)
            try await idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await eventually { idle.text.contains("hello from web1") })
            let start = ContinuousClock.now
            try await proxy.shutdown()
            #expect(ContinuousClock.now - start < .seconds(5), "shutdown waited on an idle keep-alive connection")
            #expect(await eventually { idle.closedByPeer })
            await idle.close()
            await web1.stop()
        }

        @Test func gracefulShutdownFinishesInFlightRequests() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let slow = Task { try await get("/?sleep=500", from: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            try await proxy.shutdown()
            #expect(try await slow.value.status == 200)
            await #expect(throws: (any Error).self) { _ = try await get("/", from: proxy.endpoint) }
            await web1.stop()
        }
    }
}
