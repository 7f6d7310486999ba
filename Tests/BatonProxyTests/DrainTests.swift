import BatonCore
import BatonProxy
import BatonTesting
import Testing

extension LiveProxyTests {
    @Suite struct DrainTests {
        @Test func drainRemoveAndAddUnderLoadFailsNothing() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let web2 = try await TestBackend.start(name: "web2")
            let web3 = try await TestBackend.start(name: "web3")
            let proxy = try await startProxy(backends: [web1, web2])
            let load = LoadGenerator.start(against: proxy.endpoint, concurrency: 8, request: mixedRequests)

            #expect(await eventually { load.completed > 200 })
            let drained = try await proxy.admin.drain("web1", timeout: .seconds(10))
            #expect(drained.cut == 0)
            #expect(try await proxy.admin.backend("web1").state == .drained)
            #expect(try await proxy.admin.backend("web1").inFlight == 0)
            let servedAtDrain = web1.requestsServed
            try await proxy.admin.remove("web1")
            _ = try await proxy.admin.add(name: "web3", address: web3.address)
            let before = load.completed
            #expect(await eventually { load.completed > before + 300 })
            // The real life of a rolling upgrade: the next node out, then back.
            _ = try await proxy.admin.drain("web2", timeout: .seconds(10))
            _ = try await proxy.admin.markReady("web2")
            let beforeReady = load.completed
            #expect(await eventually { load.completed > beforeReady + 200 })
            let result = await load.stop()

            #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
            #expect(web1.requestsServed == servedAtDrain, "a drained backend got new requests")
            #expect((result.byBackend["web3"] ?? 0) > 0)
            #expect((result.byBackend["web2"] ?? 0) > 0)
            try await proxy.shutdown()
            for backend in [web1, web2, web3] { await backend.stop() }
        }

        @Test func drainWaitsForInFlightRequests() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let slow = Task { try await get("/?sleep=600", from: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            let start = ContinuousClock.now
            let result = try await proxy.admin.drain("web1", timeout: .seconds(10))
            let waited = ContinuousClock.now - start
            #expect(result.cut == 0)
            #expect(waited >= .milliseconds(300), "drain returned while a request was in flight")
            #expect(try await slow.value.status == 200)
            // Its pooled keep-alive connections are closed too, so the server can stop at once.
            #expect(await eventually { web1.openConnections == 0 })
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func drainTimeoutCutsAndReportsInFlightRequests() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.maxHold = .milliseconds(300) }
            let hung = Task { try await get("/hang", from: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            let result = try await proxy.admin.drain("web1", timeout: .milliseconds(300))
            #expect(result.cut == 1)
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 0 })
            #expect(try await proxy.admin.backend("web1").state == .drained)
            // The cut GET failed before any response byte, so it was retried; with the only
            // backend drained it was held, and answered 503 at the hold limit.
            let response = try await hung.value
            #expect(response.status == 503)
            #expect(response[header: "x-baton-error"] == "no-backend")
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
