import BatonCore
import BatonProxy
import BatonTesting
import Testing

/// Streaming responses must not make fast requests queue behind busy app workers. A worker is
/// busy until its handler returns, which can be after the response's last byte; these tests
/// count requests that found no free worker (`WorkerBackend.waitedForWorker`) instead of timing
/// them. `benchmarks/streaming.sh` measures the latency with gunicorn, nginx and HAProxy.
/// (A kept-alive connection gives no such sign: a threaded server's worker still finishing a
/// stream is invisible to a proxy, as it is to nginx and HAProxy.)
extension LiveProxyTests {
    @Suite struct BusyWorkerTests {
        func start(_ backends: [WorkerBackend], _ configure: (inout ProxyConfiguration) -> Void = { _ in }) async throws -> LiveProxy {
            let proxy = try await LiveProxy.start(configure)
            for backend in backends {
                _ = try await proxy.admin.add(name: backend.name, address: backend.address, timeout: .seconds(10))
            }
            return proxy
        }

        /// Sends GET `path` one after another until `until`; returns how many were answered 200.
        func repeatedly(_ path: String, through proxy: LiveProxy, until: ContinuousClock.Instant) async throws -> Int {
            var answered = 0
            while ContinuousClock.now < until {
                let status = try await get(path, from: proxy.endpoint).status
                #expect(status == 200)
                if status == 200 { answered += 1 }
            }
            return answered
        }

        @Test func aClosingBackendCountsTheRequestUntilItCloses() async throws {
            let web1 = try await WorkerBackend.start(name: "web1", workers: 1)
            let proxy = try await start([web1]) { $0.backendCloseGrace = .seconds(30) }
            let response = try await get("/stream?ms=50&linger=3000", from: proxy.endpoint)
            #expect(response.status == 200)
            #expect(response.body.readableBytes == 10)
            // The client has its whole response; the worker is still in its handler.
            #expect(proxy.server.pool.info(name: "web1")?.inFlight == 1)
            // The backend's close, not the 30 s grace, ends it.
            #expect(await eventually(timeout: .seconds(10)) { proxy.server.pool.info(name: "web1")?.inFlight == 0 })
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func aBackendThatNeverClosesIsClosedAfterTheGrace() async throws {
            let web1 = try await WorkerBackend.start(name: "web1", workers: 1)
            let proxy = try await start([web1]) { $0.backendCloseGrace = .seconds(3) }
            let response = try await get("/stream?ms=10&linger=600000", from: proxy.endpoint)
            #expect(response.status == 200)
            #expect(proxy.server.pool.info(name: "web1")?.inFlight == 1)
            #expect(await eventually(timeout: .seconds(5)) { proxy.server.pool.info(name: "web1")?.inFlight == 0 })
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func requestsGoAroundAWorkerStillFinishingItsResponse() async throws {
            let web1 = try await WorkerBackend.start(name: "web1", workers: 1)
            let web2 = try await WorkerBackend.start(name: "web2", workers: 1)
            let proxy = try await start([web1, web2])
            // One node's only worker lingers a second after its response; the other is free.
            #expect(try await get("/stream?ms=20&linger=1000", from: proxy.endpoint).status == 200)
            for _ in 0..<10 { #expect(try await get("/fast", from: proxy.endpoint).status == 200) }
            #expect(web1.requestsServed + web2.requestsServed == 11)
            #expect(web1.waitedForWorker + web2.waitedForWorker == 0, "web1 \(web1.waitedForWorker), web2 \(web2.waitedForWorker) waited")
            try await proxy.shutdown()
            await web1.stop()
            await web2.stop()
        }

        /// Sync workers (`Connection: close`): a stream's worker lingers after its last byte,
        /// and the stream client asks for the next one at once. With two workers a node and one
        /// stream client whose streams end at least 100 ms apart and linger 120 ms, at most three
        /// workers of four are busy with streams, so a fast request always finds a free one if
        /// the proxy counts lingering workers as busy.
        @Test func streamsInFlightNeverQueueFastRequestsBehindBusyWorkers() async throws {
            let web1 = try await WorkerBackend.start(name: "web1", workers: 2)
            let web2 = try await WorkerBackend.start(name: "web2", workers: 2)
            let proxy = try await start([web1, web2])
            let until = ContinuousClock.now + .seconds(2)
            async let streams = repeatedly("/stream?ms=100&linger=120", through: proxy, until: until)
            let fast = try await repeatedly("/fast", through: proxy, until: until)
            let streamed = try await streams
            #expect(streamed >= 5 && fast >= 20, "streams \(streamed), fast \(fast)")
            #expect(web1.waitedForWorker + web2.waitedForWorker == 0, "web1 \(web1.waitedForWorker), web2 \(web2.waitedForWorker) waited")
            try await proxy.shutdown()
            await web1.stop()
            await web2.stop()
        }
    }
}
