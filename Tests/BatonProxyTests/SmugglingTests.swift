import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension LiveProxyTests {
    /// Each request below once reached the backend as two requests: a hidden one rode along on a
    /// pooled connection. The backend must see exactly as many requests as the client sent.
    @Suite struct SmugglingTests {
        static let hidden = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

        static func chunked(_ text: String) -> String {
            String(text.utf8.count, radix: 16) + "\r\n" + text + "\r\n0\r\n\r\n"
        }

        /// Sends `request` then a plain follow-up on the same connection; returns what came back,
        /// how many responses, and how many requests the backend served.
        func send(_ request: String, followUp: Bool = true) async throws -> (text: String, responses: Int, served: Int) {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send(request)
            try await Task.sleep(for: .milliseconds(300))
            if followUp && !connection.closedByPeer {
                try await connection.send("GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            }
            let text = await connection.waitForClose(timeout: .seconds(5))
            try await Task.sleep(for: .milliseconds(100))
            let served = web1.requestsServed
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
            // Final responses' status lines (a body may follow another without a line break).
            return (text, text.matches(of: try Regex("HTTP/1\\.[01] [2-5][0-9]{2} ")).count, served)
        }

        @Test func traceWithABodyIsRefused() async throws {
            let (text, responses, served) = try await send("TRACE / HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.hidden.utf8.count)\r\n\r\n\(Self.hidden)")
            #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
            #expect(responses == 1)
            #expect(served == 0)
        }

        @Test(arguments: [
            ("Connection: content-length", "Content-Length: \(hidden.utf8.count)\r\nConnection: content-length\r\n\r\n\(hidden)"),
            ("Connection: transfer-encoding", "Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n\(chunked(hidden))"),
            ("Transfer-Encoding: Chunked", "Transfer-Encoding: Chunked\r\n\r\n\(chunked(hidden))"),
            ("Transfer-Encoding: CHUNKED", "Transfer-Encoding: CHUNKED\r\n\r\n\(chunked(hidden))"),
            ("Connection: host", "Content-Length: \(hidden.utf8.count)\r\nConnection: host, content-length\r\n\r\n\(hidden)"),
        ])
        func bodyOnAGetStaysOneRequest(name: String, rest: String) async throws {
            let (text, responses, served) = try await send("GET /echo HTTP/1.1\r\nHost: x\r\n" + rest)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(name): \(text)")
            #expect(text.contains("\"body-bytes\":\"\(Self.hidden.utf8.count)\""), "\(name): the body did not reach the backend as a body: \(text)")
            #expect(responses == 2, "\(name): expected the answer and the follow-up's: \(text)")
            #expect(served == 2, "\(name): the backend served \(served) requests for 2 sent")
            #expect(!text.contains("/smuggled"))
        }

        @Test(arguments: ["gzip, chunked", "identity, chunked"])
        func otherTransferCodingsAre501AndClose(coding: String) async throws {
            let (text, responses, served) = try await send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(coding)\r\n\r\n\(Self.chunked(Self.hidden))")
            #expect(text.hasPrefix("HTTP/1.1 501"), "\(coding): \(text)")
            #expect(text.lowercased().contains("x-baton-error: unsupported-transfer-coding"))
            #expect(responses == 1)
            #expect(served == 0)
        }

        @Test func connectIsRefusedAndClosed() async throws {
            let (text, responses, served) = try await send("CONNECT internal:22 HTTP/1.1\r\nHost: internal:22\r\n\r\nSSH-2.0-x\r\n")
            #expect(text.hasPrefix("HTTP/1.1 501"), "\(text)")
            #expect(responses == 1)
            #expect(served == 0)
        }

        @Test(arguments: [
            ("no Host", "GET / HTTP/1.1\r\n\r\n"),
            ("two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            ("bad Host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
            ("HTTP/1.0 chunked", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            ("relative target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n"),
            ("chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        ])
        func rfcViolationsAre400AndClose(name: String, request: String) async throws {
            let (text, responses, served) = try await send(request)
            #expect(text.hasPrefix("HTTP/1.1 400") || text.hasPrefix("HTTP/1.0 400"), "\(name): \(text)")
            #expect(responses == 1, "\(name): \(text)")
            #expect(served == 0, "\(name)")
        }

        /// llhttp stops reading after a request it takes for an upgrade; the proxy answers it as
        /// a plain request and closes, instead of leaving the client waiting on a deaf connection.
        @Test(arguments: [
            "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__",
            "Upgrade: websocket\r\nConnection: upgrade\t,x",
            "Upgrade: foo\r\nConnection: upgrade",
            "Upgrade: foo",
        ])
        func otherUpgradesAreAnsweredThenTheConnectionCloses(headers: String) async throws {
            let pipelined = "GET /echo HTTP/1.1\r\nHost: x\r\n\(headers)\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
            let (text, responses, served) = try await send(pipelined, followUp: false)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            #expect(!text.contains("\"upgrade\""), "Upgrade reached the backend: \(text)")
            #expect(text.lowercased().contains("connection: close"))
            #expect(responses == 1, "\(text)")
            #expect(served == 1)
        }

        @Test func absoluteFormIsForwardedInOriginForm() async throws {
            let (text, _, _) = try await send("GET http://shop.example/echo?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", followUp: false)
            #expect(text.contains(#""uri":"\/echo?x=1""#) || text.contains(#""uri":"/echo?x=1""#), "\(text)")
            #expect(text.contains(#""host":"shop.example""#), "\(text)")
        }

        @Test func http10KeepAliveAndClose() async throws {
            let (text, responses, _) = try await send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(text.hasPrefix("HTTP/1.0 200"), "\(text)")
            #expect(text.lowercased().contains("connection: keep-alive"))
            #expect(responses == 2, "\(text)")
            let (closing, _, _) = try await send("GET / HTTP/1.0\r\n\r\n", followUp: false)
            #expect(closing.hasPrefix("HTTP/1.0 200"))
            #expect(closing.lowercased().contains("connection: close"))
        }

        @Test func chunkedDownloadToAnHTTP10ClientIsDelimitedByClose() async throws {
            let (text, _, _) = try await send("GET /download?bytes=100 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", followUp: false)
            #expect(text.hasPrefix("HTTP/1.0 200"), "\(text)")
            #expect(!text.lowercased().contains("transfer-encoding"))
            #expect(text.hasSuffix(String(repeating: "x", count: 100)), "\(text)")
        }

        @Test func requestTrailersReachTheBackend() async throws {
            let (text, _, served) = try await send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nChecksum: 42\r\nCookie: evil=1\r\n\r\n", followUp: false)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text)")
            #expect(text.contains("\"body-bytes\":\"3\""))
            #expect(text.contains("\"trailer-checksum\":\"42\""), "\(text)")
            #expect(!text.contains("trailer-cookie"), "a forbidden trailer was passed on: \(text)")
            #expect(served == 1)
        }

        @Test func expectContinueUploadsDoNotStall() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send("PUT /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            // The backend answers 100 Continue at once; the client must see it well before curl's
            // 1 s expect timeout.
            let start = ContinuousClock.now
            let sawContinue = await eventually(timeout: .seconds(2)) { connection.text.hasPrefix("HTTP/1.1 100 Continue\r\n") }
            #expect(sawContinue, "no 100 Continue: \(connection.text)")
            #expect(ContinuousClock.now - start < .milliseconds(900))
            try await connection.send("hello")
            #expect(await eventually(timeout: .seconds(5)) { connection.text.contains("received 5") }, "\(connection.text)")
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
