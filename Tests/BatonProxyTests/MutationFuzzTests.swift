import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import Testing

extension LiveProxyTests {
    /// Valid requests, mutated at random (header names and values, framing, methods,
    /// pipelining), for a bounded time: the proxy never crashes, the backend never serves more
    /// requests than there are request lines in what the client sent, and the client gets at
    /// most one response per request line (plus one error for trailing garbage). The exact
    /// smuggling cases are in SmugglingTests.
    @Suite struct MutationFuzzTests {
        static let templates: [[String]] = [
            ["GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"],
            ["POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"],
            ["POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
            ["GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"],
            ["PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", "DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n"],
            ["GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n"],
        ]

        static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

        static let mutations: [@Sendable (inout String, inout SystemRandomNumberGenerator) -> Void] = [
            { text, _ in text = text.replacingOccurrences(of: "Content-Length", with: "content-LENGTH") },
            { text, _ in text = text.replacingOccurrences(of: "chunked", with: ["Chunked", "CHUNKED", " chunked", "chunked ", "gzip, chunked", "chunked, chunked", "identity"].randomElement()!) },
            { text, r in text = text.replacingOccurrences(of: "Host: x\r\n", with: "Host: x\r\n" + ["Connection: content-length", "Connection: transfer-encoding", "Connection: host", "Connection: upgrade\r\nUpgrade: websocket", "Transfer-Encoding: chunked", "Content-Length: 0", "Content-Length: 36", "Expect: 100-continue", "Connection: close", "X-Fold: a\r\n b", "Upgrade: h2c"].randomElement(using: &r)! + "\r\n") },
            { text, r in text = text.replacingOccurrences(of: "GET", with: ["TRACE", "CONNECT", "OPTIONS", "G E T", "get", "PRI"].randomElement(using: &r)!) },
            { text, r in text = text.replacingOccurrences(of: "HTTP/1.1", with: ["HTTP/1.0", "HTTP/2.0", "HTTP/1.10", "http/1.1"].randomElement(using: &r)!) },
            { text, r in text += [smuggled, "0\r\n\r\n", "\r\n", "hello"].randomElement(using: &r)! },
            { text, r in
                guard !text.isEmpty else { return }
                var bytes = Array(text.utf8)
                bytes[Int.random(in: 0..<bytes.count, using: &r)] = [0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0xFF, 0x09].randomElement(using: &r)!
                text = String(decoding: bytes, as: UTF8.self)
            },
            { text, r in text = String(text.prefix(Int.random(in: 0...text.count, using: &r))) },
            { text, _ in text = text.replacingOccurrences(of: ": ", with: " : ") },
            { text, _ in text = text.replacingOccurrences(of: "\r\n", with: "\n") },
        ]

        @Test func mutatedRequestsNeverSmuggleOrCrash() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1]) {
                $0.headerTimeout = .milliseconds(300)
                $0.bodyTimeout = .milliseconds(300)
            }
            var random = SystemRandomNumberGenerator()
            let start = ContinuousClock.now
            var cases = 0
            while cases < 200 && ContinuousClock.now - start < .seconds(20) {
                let template = Self.templates.randomElement(using: &random)!
                var requests = template
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let index = Int.random(in: 0..<requests.count, using: &random)
                    Self.mutations.randomElement(using: &random)!(&requests[index], &random)
                }
                // Request lines the client sent, as any parser could read them (a pipelined request
                // appended by a mutation counts; one hidden in a body is counted too, so this
                // bound is loose: SmugglingTests hold the exact cases).
                let sent = requests.joined().matches(of: try Regex("[A-Za-z]+[ \\t]+\\S+[ \\t]+(HTTP|http)/")).count
                let before = web1.requestsServed
                let connection = try await RawConnection.connect(to: proxy.endpoint)
                try? await connection.send(requests.joined())
                // Until it answered everything or closed, within a second.
                let statusLine = try Regex("HTTP/1\\.[01] [2-5][0-9]{2} ")
                _ = await eventually(timeout: .seconds(1)) {
                    connection.closedByPeer || connection.text.matches(of: statusLine).count >= max(sent, 1)
                }
                await connection.close()
                try await Task.sleep(for: .milliseconds(20))
                let served = web1.requestsServed - before
                let responses = connection.text.matches(of: statusLine).count
                let shown = requests.joined().debugDescription.prefix(300)
                #expect(served <= sent, "the backend served \(served) for \(sent) sent: \(shown)")
                #expect(responses <= sent + 1, "\(responses) responses for \(sent) requests: \(shown)")
                cases += 1
            }
            #expect(cases >= 50)
            // Still alive and serving.
            #expect(try await get("/", from: proxy.endpoint).status == 200)
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
