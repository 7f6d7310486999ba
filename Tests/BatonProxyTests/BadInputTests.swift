import BatonCore
import BatonProxy
import BatonTesting
import NIOHTTP1
import Testing

extension LiveProxyTests {
    @Suite struct BadInputTests {
        /// Sends raw bytes and returns what came back before the proxy closed the connection.
        func exchange(_ proxy: LiveProxy, _ request: String, timeout: Duration = .seconds(5)) async throws -> (String, closed: Bool) {
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send(request)
            let text = await connection.waitForClose(timeout: timeout)
            let closed = connection.closedByPeer
            await connection.close()
            return (text, closed)
        }

        @Test(arguments: [
            ("content-length and transfer-encoding", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("conflicting content-lengths", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            ("garbage request line", "HELLO THERE\r\n\r\n"),
            ("bad header", "GET / HTTP/1.1\r\nHost x\r\n\r\n"),
            ("bad chunk size", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        ])
        func malformedRequestsGet400AndAClosedConnection(name: String, request: String) async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let (response, closed) = try await exchange(proxy, request)
            #expect(response.hasPrefix("HTTP/1.1 400 Bad Request"), "\(name): \(response)")
            #expect(response.lowercased().contains("x-baton-error: malformed-request"))
            #expect(response.contains("malformed request"))
            #expect(closed, "\(name): the connection must be closed so nothing after it is read as a request")
            #expect(web1.requestsServed == 0, "\(name) reached the backend")
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func oversizedHeadersGet431() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let big = String(repeating: "a", count: 100_000)
            let (response, closed) = try await exchange(proxy, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 431"))
            #expect(response.lowercased().contains("x-baton-error: headers-too-large"))
            #expect(closed)
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func slowHeadersAreCutWithoutSlowingOthers() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.headerTimeout = .milliseconds(500) }
            let slow = try await RawConnection.connect(to: proxy.endpoint)
            try await slow.send("GET / HTTP/1.1\r\nHost: x\r\n")
            // Meanwhile others are served at once.
            let start = ContinuousClock.now
            for _ in 0..<5 { #expect(try await get("/", from: proxy.endpoint).status == 200) }
            #expect(ContinuousClock.now - start < .milliseconds(500))
            try await slow.send("X-Trickle: 1\r\n")
            let text = await slow.waitForClose(timeout: .seconds(5))
            #expect(slow.closedByPeer)
            #expect(text.hasPrefix("HTTP/1.1 408"))
            #expect(text.lowercased().contains("x-baton-error: header-timeout"))
            await slow.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func silentBackendGets504() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) { $0.responseTimeout = .milliseconds(400) }
            let start = ContinuousClock.now
            let response = try await get("/hang", from: proxy.endpoint)
            #expect(response.status == 504)
            #expect(response[header: "x-baton-error"] == "response-timeout")
            #expect(ContinuousClock.now - start >= .milliseconds(400))
            // The connection it hung on is not reused; the next request is fine.
            #expect(try await get("/", from: proxy.endpoint).status == 200)
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func keepAliveSurvivesManyRequestsAndPipelining() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let text = await connection.waitForClose(timeout: .seconds(5))
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "\(text)")
            #expect(connection.closedByPeer)
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
