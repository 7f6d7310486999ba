import BatonCore
@testable import BatonProxy
import BatonTesting
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

extension LiveProxyTests {
    /// Every request state has a clock, and nothing a client does makes the proxy hold without limit.
    @Suite struct ResourceTests {
        @Test func uploadThatKeepsMovingIsNotCutByTheResponseTimeout() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.responseTimeout = .seconds(1) }
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            // 1 KB every 100 ms for 2.5 s: far longer than the response timeout, never silent.
            let kilobyte = String(repeating: "u", count: 1024)
            for _ in 0..<25 {
                try await connection.send("400\r\n\(kilobyte)\r\n")
                try await Task.sleep(for: .milliseconds(100))
            }
            try await connection.send("0\r\n\r\n")
            #expect(await eventually(timeout: .seconds(5)) { connection.text.contains("received \(25 * 1024)") }, "\(connection.text)")
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func stalledUploadGets408AndTheConnectionCloses() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.bodyTimeout = .milliseconds(500) }
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
            let text = await connection.waitForClose(timeout: .seconds(5))
            #expect(text.hasPrefix("HTTP/1.1 408"), "\(text)")
            #expect(text.lowercased().contains("x-baton-error: body-timeout"))
            #expect(connection.closedByPeer)
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 0 })
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func clientThatStopsReadingIsCutAfterTheWriteTimeout() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.writeTimeout = .milliseconds(500) }
            let connection = try await RawConnection.connect(to: proxy.endpoint, reading: false)
            try await connection.send("GET /download?bytes=\(256 << 20) HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            // Stuck behind the client, the request is cut and its backend freed.
            #expect(await eventually(timeout: .seconds(5)) { proxy.server.pool.info(name: "web1")?.inFlight == 0 })
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func newConnectionThatSendsNothingGetsTheHeaderTimeout() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) {
                $0.headerTimeout = .milliseconds(300)
                $0.idleTimeout = .seconds(60)
            }
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            let start = ContinuousClock.now
            await connection.waitForClose(timeout: .seconds(5))
            #expect(connection.closedByPeer)
            #expect(ContinuousClock.now - start < .seconds(3))
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func shutdownHasADeadline() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.shutdownTimeout = .milliseconds(500) }
            let hung = Task { try? await get("/hang", from: proxy.endpoint) }
            #expect(await eventually { proxy.server.pool.info(name: "web1")?.inFlight == 1 })
            let start = ContinuousClock.now
            try await proxy.shutdown()
            #expect(ContinuousClock.now - start < .seconds(5), "shutdown waited \(ContinuousClock.now - start) for a request that never ends")
            _ = await hung.value
            await web1.stop()
        }

        @Test func heldRequestsAreCappedAndLeaveWhenTheirClientGoes() async throws {
            let proxy = try await LiveProxy.start { $0.maxHeld = 3 }
            var clients: [RawConnection] = []
            for _ in 0..<3 {
                let client = try await RawConnection.connect(to: proxy.endpoint)
                try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(client)
            }
            #expect(await eventually { proxy.server.pool.heldRequests == 3 })
            // The queue is full: the next one is refused at once instead of waiting.
            let start = ContinuousClock.now
            let refused = try await get("/", from: proxy.endpoint)
            #expect(refused.status == 503)
            #expect(refused[header: "x-baton-error"] == "hold-queue-full")
            #expect(ContinuousClock.now - start < .seconds(2))
            // Clients that leave give their place back now, not at --max-hold.
            for client in clients { await client.close() }
            #expect(await eventually(timeout: .seconds(2)) { proxy.server.pool.heldRequests == 0 })
            try await proxy.shutdown()
        }

        @Test func pipeliningWithoutReadingKeepsMemoryBounded() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let client = try await RawConnection.connect(to: proxy.endpoint, reading: false)
            let baseline = ProcessMemory.residentBytes()
            // 2,000 pipelined requests for 1 MiB each (2 GiB of responses), never read.
            let request = "GET /download?bytes=\(1 << 20) HTTP/1.1\r\nHost: x\r\n\r\n"
            let batch = String(repeating: request, count: 100)
            for _ in 0..<20 { try await client.send(batch) }
            try await Task.sleep(for: .seconds(2))
            let growth = ProcessMemory.residentBytes() - baseline
            #expect(growth < 128 << 20, "memory grew by \(growth >> 20) MiB")
            // The proxy stopped reading: only the first few requests reached the backend.
            #expect(web1.requestsServed <= 2 + DefaultMaxQueuedRequests, "served \(web1.requestsServed)")
            await client.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func fiveThousandIdleConnectionsCostLittleMemory() async throws {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            // Both ends live in this process: 5,000 needs over 10,000 descriptors; fewer where the
            // machine allows fewer.
            let count = min(5000, (Int(limit.rlim_cur) - 2000) / 2)
            try #require(count >= 1000, "needs at least 4,000 file descriptors, has \(limit.rlim_cur)")
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let baseline = ProcessMemory.residentBytes()
            var clients: [RawConnection] = []
            for _ in 0..<count { clients.append(try await RawConnection.connect(to: proxy.endpoint)) }
            #expect(try await get("/", from: proxy.endpoint).status == 200)
            let growth = ProcessMemory.residentBytes() - baseline
            // Client and proxy ends both live in this process: < 40 KiB a connection for both.
            #expect(growth < count * 40 * 1024, "\(count) idle connections grew memory by \(growth >> 20) MiB")
            for client in clients { await client.close() }
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func pooledConnectionsRetireBeforeTheBackendsKeepAliveTimeout() async throws {
            // Like gunicorn: the backend closes connections idle 400 ms. Requests spaced around
            // that would race its close; retired at 200 ms, none goes out on a closing one.
            let web1 = try await TestBackend.start(name: "web1", keepAliveTimeout: .milliseconds(400))
            let proxy = try await startProxy(backends: [web1]) {
                $0.backendIdleTimeout = .milliseconds(200)
                $0.threads = 1
            }
            for index in 0..<12 {
                // POST is not retried once sent: a request lost to a closing connection fails.
                let response = try await HTTP1Client.send(HTTPRequest(.POST, "/upload", body: "n=\(index)"), to: proxy.endpoint)
                #expect(response.status == 200, "request \(index): \(response.status) \(response[header: "x-baton-error"] ?? "")")
                try await Task.sleep(for: .milliseconds(380 + 5 * (index % 5)))
            }
            #expect(!(try await proxy.admin.metrics()).contains("baton_proxy_retries_total 1"))
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func connectionsToABackendAreCappedAndRequestsWaitForOne() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) {
                $0.maxConnectionsPerBackend = 2
                $0.threads = 1
            }
            let peak = Mutex(0)
            let sampler = Task {
                while !Task.isCancelled {
                    let open = web1.openConnections
                    peak.withLock { $0 = max($0, open) }
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            let statuses = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<12 { group.addTask { (try? await get("/?sleep=100", from: proxy.endpoint).status) ?? 0 } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            sampler.cancel()
            #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")
            // Two for requests, plus the health checker's own short connections.
            #expect(peak.withLock { $0 } <= 3, "the backend saw \(peak.withLock { $0 }) connections at once")
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func clientConnectionsBeyondTheCapAreClosed() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.maxConnections = 3 }
            // Child channels are set up on their own event loops, so which of four connections
            // comes fourth is up to the scheduler: exactly one of them is closed.
            var open: [RawConnection] = []
            for _ in 0..<4 { open.append(try await RawConnection.connect(to: proxy.endpoint)) }
            #expect(await eventually(timeout: .seconds(2)) { open.contains(where: \.closedByPeer) })
            try await Task.sleep(for: .milliseconds(200))
            #expect(open.filter(\.closedByPeer).count == 1)
            for connection in open { await connection.close() }
            // Places free up again.
            #expect(try await eventually { (try? await get("/", from: proxy.endpoint).status) == 200 })
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}

@Suite struct ConnectFailureTests {
    @Test func onlyTheBackendsOwnFailuresCountAgainstIt() {
        #expect(BackendConnectionPool.isBackendFault(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(!BackendConnectionPool.isBackendFault(IOError(errnoCode: EMFILE, reason: "socket")))
        #expect(!BackendConnectionPool.isBackendFault(IOError(errnoCode: EADDRNOTAVAIL, reason: "connect")))
        #expect(!BackendConnectionPool.isBackendFault(ConnectionLimitReached()))
        #expect(BackendConnectionPool.isBackendFault(ChannelError.connectTimeout(.seconds(1))))
    }
}
