@testable import BatonProxy
import NIOCore
import NIOHTTP1
import Testing

/// The intermediary's rules (RFC 9110 §7.6, RFC 9112 §3.2, §6) one by one, without sockets.
@Suite struct HeadRewriterTests {
    let rewriter = HeadRewriter()

    func request(_ method: HTTPMethod, _ uri: String, version: HTTPVersion = .http1_1, _ headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    func request(_ method: HTTPMethod, version: HTTPVersion = .http1_1, _ headers: [(String, String)]) -> HTTPRequestHead {
        request(method, "/", version: version, headers)
    }

    func rewrite(_ head: HTTPRequestHead, from peer: String = "192.0.2.7") -> Result<HeadRewriter.Request, ProxyError> {
        rewriter.request(head, clientAddress: peer, requestID: "id1")
    }

    func upstream(_ head: HTTPRequestHead) throws -> HeadRewriter.Request {
        try rewrite(head).get()
    }

    func refusal(_ head: HTTPRequestHead) -> ProxyError? {
        if case .failure(let error) = rewrite(head) { return error }
        return nil
    }

    // MARK: Framing: written from what was parsed, never copied

    @Test(arguments: ["Chunked", "CHUNKED", "chunked", " chunked "])
    func chunkedInAnySpellingIsForwardedAsExactlyOneLowercaseHeader(value: String) throws {
        let result = try upstream(request(.POST, [("Host", "x"), ("Transfer-Encoding", value)]))
        #expect(result.framing == .chunked)
        #expect(result.head.headers["transfer-encoding"] == ["chunked"])
        #expect(!result.head.headers.contains(name: "content-length"))
    }

    @Test func otherTransferCodingsAreRefusedWith501() {
        let error = refusal(request(.POST, [("Host", "x"), ("Transfer-Encoding", "gzip, chunked")]))
        #expect(error?.status == .notImplemented)
        #expect(error?.reason == "unsupported-transfer-coding")
    }

    @Test func transferEncodingNotEndingInChunkedIs400() {
        #expect(refusal(request(.POST, [("Host", "x"), ("Transfer-Encoding", "chunked, gzip")]))?.status == .badRequest)
    }

    @Test func transferEncodingFromAnHTTP10ClientIs400() {
        #expect(refusal(request(.POST, version: .http1_0, [("Transfer-Encoding", "chunked")]))?.status == .badRequest)
    }

    @Test func contentLengthIsRewrittenFromItsParsedValue() throws {
        let result = try upstream(request(.PUT, [("Host", "x"), ("Content-Length", "5, 5"), ("content-length", "5")]))
        #expect(result.framing == .length(5))
        #expect(result.head.headers["content-length"] == ["5"])
    }

    @Test(arguments: ["5, 6", "-1", "abc", "1e3", "", "99999999999999999999"])
    func badContentLengthIs400(value: String) {
        #expect(refusal(request(.POST, [("Host", "x"), ("Content-Length", value)]))?.status == .badRequest)
    }

    @Test func connectionTokensCannotRemoveFramingOrHost() throws {
        let head = request(.GET, [("Host", "shop.example"), ("Content-Length", "3"), ("Connection", "content-length, host, x-secret"), ("X-Secret", "1")])
        let result = try upstream(head)
        #expect(result.framing == .length(3))
        #expect(result.head.headers["content-length"] == ["3"])
        #expect(result.head.headers["host"] == ["shop.example"])
        #expect(!result.head.headers.contains(name: "x-secret"))
        #expect(!result.head.headers.contains(name: "connection"))
    }

    @Test func transferEncodingNamedByConnectionStillFramesTheBody() throws {
        let result = try upstream(request(.GET, [("Host", "x"), ("Transfer-Encoding", "chunked"), ("Connection", "transfer-encoding")]))
        #expect(result.head.headers["transfer-encoding"] == ["chunked"])
    }

    @Test func traceWithABodyIsRefused() {
        #expect(refusal(request(.TRACE, [("Host", "x"), ("Content-Length", "4")]))?.status == .badRequest)
        #expect(refusal(request(.TRACE, [("Host", "x"), ("Transfer-Encoding", "chunked")]))?.status == .badRequest)
        #expect(refusal(request(.TRACE, [("Host", "x")])) == nil)
    }

    @Test func connectIsNotSupported() {
        #expect(refusal(request(.CONNECT, "example.com:443", [("Host", "example.com:443")])) == .connectNotSupported)
    }

    @Test func bodylessWritesSayContentLengthZero() throws {
        #expect(try upstream(request(.POST, [("Host", "x")])).head.headers["content-length"] == ["0"])
        #expect(!(try upstream(request(.GET, [("Host", "x")])).head.headers.contains(name: "content-length")))
    }

    @Test func hopByHopHeadersAreDropped() throws {
        let head = request(.GET, [("Host", "x"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Trailer", "x"), ("Upgrade", "h2c"), ("Connection", "upgrade")])
        let headers = try upstream(head).head.headers
        for name in ["keep-alive", "proxy-connection", "te", "trailer", "upgrade", "connection"] {
            #expect(!headers.contains(name: name), "\(name) was forwarded")
        }
    }

    // MARK: Host and targets (RFC 9112 §3.2)

    @Test func http11WithoutHostOrWithTwoIs400() {
        #expect(refusal(request(.GET, [])) != nil)
        #expect(refusal(request(.GET, [("Host", "a"), ("Host", "b")])) != nil)
        #expect(refusal(request(.GET, [("Host", "a b")])) != nil)
    }

    @Test func http10WithoutHostIsFine() throws {
        let result = try upstream(request(.GET, version: .http1_0, []))
        #expect(result.head.version == .http1_1)
        #expect(result.head.headers["host"] == [""])
    }

    @Test func absoluteFormTargetsGoInOriginFormWithTheirAuthorityAsHost() throws {
        let result = try upstream(request(.GET, "http://user@shop.example:8080/cart?x=1", [("Host", "other")]))
        #expect(result.head.uri == "/cart?x=1")
        #expect(result.head.headers["host"] == ["shop.example:8080"])
        #expect(try upstream(request(.GET, "HTTP://shop.example", [("Host", "x")])).head.uri == "/")
    }

    @Test func asteriskIsForOptionsOnly() {
        #expect(refusal(request(.OPTIONS, "*", [("Host", "x")])) == nil)
        #expect(refusal(request(.GET, "*", [("Host", "x")])) != nil)
        #expect(refusal(request(.GET, "relative", [("Host", "x")])) != nil)
    }

    // MARK: Upgrades

    @Test func webSocketHandshakeKeepsItsUpgradeHeaders() throws {
        let head = request(.GET, "/socket", [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade"), ("Sec-WebSocket-Key", "k")])
        let result = try upstream(head)
        #expect(result.isWebSocket)
        #expect(result.head.headers["upgrade"] == ["websocket"])
        #expect(result.head.headers["connection"] == ["upgrade"])
        #expect(result.head.headers["sec-websocket-key"] == ["k"])
    }

    @Test func aHandshakeWrittenOddlyIsNoTunnel() throws {
        for connection in ["upgrade\t,x", "Upgrade;x", "upgrade,,", "\tupgrade"] {
            let head = request(.GET, [("Host", "x"), ("Upgrade", "websocket"), ("Connection", connection)])
            #expect(!(try upstream(head).isWebSocket), "\(connection)")
        }
    }

    @Test func otherUpgradesAreIgnored() throws {
        let result = try upstream(request(.GET, [("Host", "x"), ("Upgrade", "h2c"), ("Connection", "Upgrade, HTTP2-Settings"), ("HTTP2-Settings", "AAA")]))
        #expect(!result.isWebSocket)
        #expect(!result.head.headers.contains(name: "upgrade"))
        #expect(!result.head.headers.contains(name: "http2-settings"))
    }

    // MARK: Forwarded headers

    @Test func forwardedHeadersSayWhatTheProxySawUnlessThePeerIsTrusted() throws {
        let spoofed = request(.GET, [("Host", "shop.example"), ("X-Forwarded-For", "10.9.9.9"), ("X-Forwarded-Host", "evil"), ("X-Forwarded-Proto", "https")])
        let headers = try upstream(spoofed).head.headers
        #expect(headers["x-forwarded-for"] == ["10.9.9.9, 192.0.2.7"])
        #expect(headers["x-forwarded-host"] == ["shop.example"])
        #expect(headers["x-forwarded-proto"] == ["http"])

        let trusting = HeadRewriter(trustedProxies: try TrustedProxies(parsing: ["192.0.2.0/24"]))
        let kept = try trusting.request(spoofed, clientAddress: "192.0.2.7", requestID: "id").get().head.headers
        #expect(kept["x-forwarded-host"] == ["evil"])
        #expect(kept["x-forwarded-proto"] == ["https"])
        let notTrusted = try trusting.request(spoofed, clientAddress: "198.51.100.1", requestID: "id").get().head.headers
        #expect(notTrusted["x-forwarded-host"] == ["shop.example"])
    }

    @Test func trustedProxyRanges() throws {
        let trusted = try TrustedProxies(parsing: ["10.0.0.0/8", "192.168.1.10", "fd00::/8"])
        #expect(trusted.contains("10.200.3.4"))
        #expect(!trusted.contains("11.0.0.1"))
        #expect(trusted.contains("192.168.1.10"))
        #expect(!trusted.contains("192.168.1.11"))
        #expect(trusted.contains("fd12::1"))
        #expect(!trusted.contains("fe80::1"))
        #expect(!trusted.contains(""))
        #expect(throws: (any Error).self) { try TrustedProxies(parsing: ["10.0.0.0/33"]) }
        #expect(throws: (any Error).self) { try TrustedProxies(parsing: ["not-an-ip"]) }
    }

    // MARK: Responses

    func response(_ status: HTTPResponseStatus, _ headers: [(String, String)]) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: HTTPHeaders(headers))
    }

    func response(_ headers: [(String, String)]) -> HTTPResponseHead {
        response(.ok, headers)
    }

    func client(_ head: HTTPResponseHead, method: HTTPMethod = .GET, version: HTTPVersion = .http1_1) -> (head: HTTPResponseHead, close: Bool) {
        rewriter.response(head, to: method, clientVersion: version, keepAlive: true, backendName: "web1", requestID: "id")
    }

    @Test func responseChunkedInAnySpellingIsReChunked() {
        let (head, close) = client(response([("Transfer-Encoding", "Chunked"), ("Connection", "transfer-encoding")]))
        #expect(head.headers["transfer-encoding"] == ["chunked"])
        #expect(!close)
    }

    @Test func responseTransferCodingsOtherThanChunkedAreRefused() {
        #expect(MessageFraming.responseProblem(response([("Transfer-Encoding", "gzip, chunked")])) != nil)
        #expect(MessageFraming.responseProblem(response([("Transfer-Encoding", "gzip")])) != nil)
        #expect(MessageFraming.responseProblem(response([("Transfer-Encoding", "Chunked")])) == nil)
        #expect(MessageFraming.responseProblem(response([])) == nil)
    }

    @Test func bodyUntilCloseIsChunkedFor11AndClosesFor10() {
        #expect(client(response([])).head.headers["transfer-encoding"] == ["chunked"])
        let (head, close) = client(response([]), version: .http1_0)
        #expect(close)
        #expect(!head.headers.contains(name: "transfer-encoding"))
        #expect(head.headers["connection"] == ["close"])
    }

    @Test func headAnd304KeepTheirContentLengthAsMetadata() {
        #expect(client(response([("Content-Length", "42")]), method: .HEAD).head.headers["content-length"] == ["42"])
        #expect(client(response(.notModified, [("Content-Length", "42")])).head.headers["content-length"] == ["42"])
        #expect(!client(response(.noContent, [("Content-Length", "0")])).head.headers.contains(name: "content-length"))
    }

    @Test func http10ClientsThatAskedForKeepAliveAreToldSo() {
        #expect(client(response([("Content-Length", "2")]), version: .http1_0).head.headers["connection"] == ["keep-alive"])
    }

    @Test func backendHeadersCanBeHidden() {
        let hiding = HeadRewriter(exposeBackendHeaders: false)
        let head = hiding.response(response([("X-Baton-Release", "5.4"), ("X-Baton-Backend", "spoof"), ("Content-Length", "0")]), to: .GET, clientVersion: .http1_1, keepAlive: true, backendName: "web1", requestID: "id").head
        #expect(!head.headers.contains(name: "x-baton-backend"))
        #expect(!head.headers.contains(name: "x-baton-release"))
        #expect(client(response([("Content-Length", "0")])).head.headers["x-baton-backend"] == ["web1"])
    }

    @Test func informationalResponsesAreNotSentToHTTP10Clients() {
        let continueHead = HTTPResponseHead(version: .http1_1, status: .continue)
        #expect(rewriter.informational(continueHead, clientVersion: .http1_1) != nil)
        #expect(rewriter.informational(continueHead, clientVersion: .http1_0) == nil)
    }

    @Test func forbiddenTrailersAreDropped() {
        let kept = HeadRewriter.trailers(HTTPHeaders([("Checksum", "1"), ("Content-Length", "9"), ("Host", "x"), ("Transfer-Encoding", "chunked")]))
        #expect(kept.map { Array($0).map(\.name) } == ["Checksum"])
        #expect(HeadRewriter.trailers(HTTPHeaders([("Host", "x")])) == nil)
    }
}

@Suite struct WebSocketFrameCursorTests {
    @Test func followsFramesOfEverySizeAcrossArbitrarySplits() {
        // A masked 5-byte text frame, an unmasked 200-byte frame (16-bit length), an empty ping,
        // and a 70,000-byte frame (64-bit length).
        var stream: [UInt8] = [0x81, 0x85, 1, 2, 3, 4] + Array(repeating: 0x61, count: 5)
        stream += [0x82, 126, 0, 200] + Array(repeating: 0, count: 200)
        stream += [0x89, 0x00]
        stream += [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70] + Array(repeating: 0, count: 70_000)
        let boundaries: Set<Int> = [11, 11 + 204, 11 + 204 + 2, stream.count]
        for split in [1, 3, 7, 64, 1000, stream.count] {
            var cursor = WebSocketFrameCursor()
            var offset = 0
            var seen: Set<Int> = []
            while offset < stream.count {
                let end = min(offset + split, stream.count)
                let moved = cursor.advance(over: stream[offset..<end], stoppingAtBoundary: true)
                offset += moved
                if cursor.atBoundary { seen.insert(offset) }
            }
            #expect(seen == boundaries, "split \(split)")
        }
    }

    @Test func closeFramesAreMaskedTowardsServers() {
        #expect(WebSocketFrameCursor.closeFrame(code: 1001, masked: false) == [0x88, 0x02, 0x03, 0xE9])
        let masked = WebSocketFrameCursor.closeFrame(code: 1012, masked: true)
        #expect(masked.count == 8)
        #expect(masked[1] == 0x82)
        #expect([masked[6] ^ masked[2], masked[7] ^ masked[3]] == [0x03, 0xF4])
    }
}

@Suite struct AdminTokenTests {
    @Test func tokensCompareWholly() {
        #expect(AdminServer.constantTimeEqual("Bearer abc", "Bearer abc"))
        #expect(!AdminServer.constantTimeEqual("Bearer abd", "Bearer abc"))
        #expect(!AdminServer.constantTimeEqual("Bearer ab", "Bearer abc"))
        #expect(!AdminServer.constantTimeEqual("", "Bearer abc"))
        #expect(!AdminServer.constantTimeEqual("Bearer abc\u{0}", "Bearer abc"))
    }
}

@Suite struct EventStreamCursorTests {
    @Test func findsTheEndOfEachEventAcrossSplitsAndLineEndings() {
        let stream = Array("id: 1\ndata: a\n\nid: 2\r\ndata: b\r\n\r\ndata: c\n\n".utf8)
        let ends: Set<Int> = [15, 33, 42]
        for split in [1, 2, 5, stream.count] {
            var cursor = EventStreamCursor()
            var offset = 0
            var seen: Set<Int> = []
            while offset < stream.count {
                offset += cursor.advance(over: stream[offset..<min(offset + split, stream.count)], stoppingAtBoundary: true)
                if cursor.atBoundary { seen.insert(offset) }
            }
            #expect(seen == ends, "split \(split)")
        }
    }
}
