import Foundation
import NIOHTTP1

/// Turns the head a client sent into the head the backend gets, and the backend's response head
/// into the one the client gets, by RFC 9110 §7.6's rules for an intermediary: hop-by-hop
/// fields (and any the `Connection` header names) are dropped, framing is written from what the
/// decoder parsed, and the forwarding headers say what this proxy saw. Pure, so every rule has
/// a unit test.
struct HeadRewriter: Sendable {
    /// What the frontend needs to know about a request it is about to forward.
    struct Request: Equatable {
        var head: HTTPRequestHead
        var framing: BodyFraming
        /// A WebSocket handshake: `Upgrade` and `Connection: upgrade` go to the backend, and a
        /// 101 answer turns the connection into a tunnel.
        var isWebSocket: Bool
    }

    var trustedProxies: TrustedProxies = .none
    var exposeBackendHeaders = true

    /// The upstream request, or the error to answer with (the connection is then closed).
    func request(_ client: HTTPRequestHead, clientAddress: String, requestID: String) -> Result<Request, ProxyError> {
        if client.method == .CONNECT { return .failure(.connectNotSupported) }
        let framing: BodyFraming
        switch MessageFraming.request(client) {
        case .success(let parsed): framing = parsed
        case .failure(let error): return .failure(error)
        }

        // RFC 9112 §3.2: exactly one Host on HTTP/1.1; an absolute-form target's authority
        // replaces it; the backend gets the origin form.
        var hostCount = 0
        var host = ""
        for header in client.headers where header.name.equalsIgnoringASCIICase("host") {
            hostCount += 1
            host = header.value
        }
        if hostCount > 1 { return .failure(.malformedRequest("more than one Host header")) }
        if client.version.minor >= 1 && hostCount == 0 { return .failure(.malformedRequest("HTTP/1.1 request without Host")) }
        var uri = client.uri
        if let absolute = AbsoluteTarget(uri) {
            host = absolute.authority
            uri = absolute.originForm
        } else if uri == "*" {
            guard client.method == .OPTIONS else { return .failure(.malformedRequest("'*' is a target for OPTIONS only")) }
        } else if !uri.hasPrefix("/") {
            return .failure(.malformedRequest("request target must start with '/'"))
        }
        guard Self.isValidHost(host) else { return .failure(.malformedRequest("invalid Host '\(host)'")) }

        // Only a handshake that llhttp also reads as an upgrade (so its decoder stops after it)
        // may become a tunnel: the Connection list must be plain tokens and spaces.
        let isWebSocket = client.method == .GET && client.version.minor >= 1 && client.headers.contains(name: "upgrade")
            && Self.tokens(client.headers["upgrade"]).contains("websocket")
            && Self.plainTokens(client.headers["connection"]).contains("upgrade")

        var headers = Self.endToEnd(client.headers, protecting: Self.protectedRequestFields)
        // Headers are replaced only where they may already be there: every scan and copy here is
        // paid on every request.
        if hostCount == 0 {
            headers.add(name: "host", value: host)
        } else if host != client.headers.first(name: "host") {
            headers.replaceOrAdd(name: "host", value: host)
        }
        switch framing {
        case .length(let length): headers.add(name: "content-length", value: String(length))
        case .chunked: headers.add(name: "transfer-encoding", value: "chunked")
        // Methods whose body means something say "none" explicitly, as clients do (some servers
        // answer 411 otherwise).
        case .none where [.POST, .PUT, .PATCH].contains(client.method): headers.add(name: "content-length", value: "0")
        case .none, .untilClose: break
        }
        if isWebSocket {
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: client.headers["upgrade"].joined(separator: ", "))
        }

        let trusted = trustedProxies.contains(clientAddress)
        // The list is appended to (its last entry is the one this proxy vouches for); the host
        // and scheme are ours unless a trusted proxy in front of us said them.
        if headers.contains(name: "x-forwarded-for") {
            let forwardedFor = headers["x-forwarded-for"]
            headers.replaceOrAdd(name: "x-forwarded-for", value: (forwardedFor + [clientAddress]).joined(separator: ", "))
        } else {
            headers.add(name: "x-forwarded-for", value: clientAddress)
        }
        Self.set("x-forwarded-proto", to: "http", in: &headers, unlessKeptBy: trusted)
        Self.set("x-forwarded-host", to: host, in: &headers, unlessKeptBy: trusted)
        if headers.first(name: "x-request-id") != requestID { Self.set("x-request-id", to: requestID, in: &headers) }

        let head = HTTPRequestHead(version: .http1_1, method: client.method, uri: uri, headers: headers)
        return .success(Request(head: head, framing: framing, isWebSocket: isWebSocket))
    }

    /// The response head for the client, and whether the client connection must close after it
    /// (a body that runs until close cannot be delimited for an HTTP/1.0 client otherwise).
    func response(
        _ backend: HTTPResponseHead,
        to method: HTTPMethod,
        clientVersion: HTTPVersion,
        keepAlive: Bool,
        backendName: String,
        requestID: String
    ) -> (head: HTTPResponseHead, close: Bool) {
        var headers = Self.endToEnd(backend.headers, protecting: [])
        var close = !keepAlive
        let upgraded = backend.status == .switchingProtocols
        switch MessageFraming.response(backend, to: method) {
        case .none:
            // HEAD and 304 may say what a GET would have carried (RFC 9110 §8.6).
            if case .value(let length) = MessageFraming.contentLength(backend.headers), method == .HEAD || backend.status == .notModified {
                headers.add(name: "content-length", value: String(length))
            }
        case .length(let length):
            headers.add(name: "content-length", value: String(length))
        case .chunked, .untilClose:
            if clientVersion.minor >= 1 {
                // Exactly this spelling: it is what makes the encoder chunk the body.
                headers.add(name: "transfer-encoding", value: "chunked")
            } else {
                close = true
            }
        }
        if upgraded {
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: backend.headers["upgrade"].joined(separator: ", "))
        } else if close {
            headers.add(name: "connection", value: "close")
        } else if clientVersion.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        if exposeBackendHeaders {
            headers.add(name: "x-baton-backend", value: backendName)
        } else {
            headers.remove(name: "x-baton-backend")
            headers.remove(name: "x-baton-release")
        }
        if headers.first(name: "x-request-id") != requestID { Self.set("x-request-id", to: requestID, in: &headers) }
        return (HTTPResponseHead(version: clientVersion, status: backend.status, headers: headers), close)
    }

    /// A 1xx (other than 101) that may go on to the client: HTTP/1.0 clients get none (RFC 9110 §15.2).
    func informational(_ backend: HTTPResponseHead, clientVersion: HTTPVersion) -> HTTPResponseHead? {
        guard clientVersion.minor >= 1 else { return nil }
        return HTTPResponseHead(version: clientVersion, status: backend.status, headers: Self.endToEnd(backend.headers, protecting: []))
    }

    /// Trailer fields that may be passed on: framing, routing and hop-by-hop fields never are
    /// (RFC 9110 §6.5.1).
    static func trailers(_ trailers: HTTPHeaders?) -> HTTPHeaders? {
        guard let trailers, !trailers.isEmpty else { return nil }
        let kept = endToEnd(trailers, protecting: []).filter { !forbiddenTrailers.contains($0.name.lowercased()) }
        return kept.isEmpty ? nil : HTTPHeaders(kept)
    }

    // MARK: Rules

    /// Sets a header, replacing it only when it is there (unless `kept`: then a present one stays).
    static func set(_ name: String, to value: String, in headers: inout HTTPHeaders, unlessKeptBy kept: Bool = false) {
        if headers.contains(name: name) {
            if !kept { headers.replaceOrAdd(name: name, value: value) }
        } else {
            headers.add(name: name, value: value)
        }
    }

    static let forbiddenTrailers: Set<String> = [
        "host", "content-type", "content-encoding", "content-range", "authorization", "cookie", "set-cookie", "expect",
    ]

    /// Fields a `Connection` token may not remove from a request: the target's host.
    static let protectedRequestFields: Set<String> = ["host"]

    /// Hop-by-hop fields (RFC 9110 §7.6.1) plus the framing fields, which the proxy writes itself.
    /// Compared without allocating: this runs for every header of every message.
    static func isHopByHop(_ name: String) -> Bool {
        switch name.utf8.count {
        case 2: return name.equalsIgnoringASCIICase("te")
        case 7: return name.equalsIgnoringASCIICase("trailer") || name.equalsIgnoringASCIICase("upgrade")
        case 10: return name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive")
        case 14: return name.equalsIgnoringASCIICase("content-length")
        case 16: return name.equalsIgnoringASCIICase("proxy-connection")
        case 17: return name.equalsIgnoringASCIICase("transfer-encoding")
        case 18: return name.equalsIgnoringASCIICase("proxy-authenticate")
        default: return false
        }
    }

    /// The headers without hop-by-hop fields and without the fields `Connection` names (except
    /// the protected ones). Most messages carry none, or only `Connection: keep-alive`: one pass
    /// decides, and only then is a filtered copy made.
    static func endToEnd(_ headers: HTTPHeaders, protecting: Set<String>) -> HTTPHeaders {
        var named: Set<String> = []
        for token in tokens(headers["connection"]) where token != "close" && token != "keep-alive" && token != "upgrade" && !protecting.contains(token) {
            named.insert(token)
        }
        func dropped(_ name: String) -> Bool {
            isHopByHop(name) || (!named.isEmpty && named.contains(name.lowercased()))
        }
        guard headers.contains(where: { dropped($0.name) }) else { return headers }
        return HTTPHeaders(headers.filter { !dropped($0.name) })
    }

    /// Comma-separated tokens of a list header, lowercased.
    static func tokens(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",") }.map { $0.trimmingOWS().lowercased() }.filter { !$0.isEmpty }
    }

    /// The tokens of a list header when it is written plainly (tokens, commas, spaces), else none.
    static func plainTokens(_ values: [String]) -> [String] {
        var tokens: [String] = []
        for value in values {
            for item in value.split(separator: ",", omittingEmptySubsequences: false) {
                var token = item[...]
                while token.first == " " { token.removeFirst() }
                while token.last == " " { token.removeLast() }
                guard !token.isEmpty, token.utf8.allSatisfy(isTokenCharacter) else { return [] }
                tokens.append(token.lowercased())
            }
        }
        return tokens
    }

    /// RFC 9110 §5.6.2's tchar.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// RFC 3986's host [":" port]: reg-name characters, an IP literal in brackets, an optional port.
    static func isValidHost(_ host: String) -> Bool {
        host.utf8.count <= 255
            && host.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    return true
                default:
                    return "-._~%!$&'()*+,;=:[]".utf8.contains(byte)
                }
            }
    }
}

/// An absolute-form request target ("http://example.com:8080/path?q"), RFC 9112 §3.2.2.
struct AbsoluteTarget: Equatable {
    var authority: String
    var originForm: String

    init?(_ uri: String) {
        // The usual origin form ("/…") is told apart without allocating.
        guard let first = uri.utf8.first, first == UInt8(ascii: "h") || first == UInt8(ascii: "H") else { return nil }
        let lower = uri.prefix(8).lowercased()
        let schemeLength = lower.hasPrefix("http://") ? 7 : lower.hasPrefix("https://") ? 8 : 0
        guard schemeLength > 0 else { return nil }
        let rest = uri.dropFirst(schemeLength)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = String(rest[..<end])
        // Userinfo is never forwarded (RFC 9110 §4.2.4).
        if let at = authority.lastIndex(of: "@") { authority = String(authority[authority.index(after: at)...]) }
        let path = rest[end...]
        self.authority = authority
        self.originForm = path.hasPrefix("/") ? String(path) : "/" + path
    }
}

extension String {
    /// ASCII case-insensitive equality with a lowercase literal, without allocating.
    func equalsIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        utf8.count == lowercase.utf8CodeUnitCount && hasPrefixIgnoringASCIICase(lowercase)
    }

    /// ASCII case-insensitive prefix test against a lowercase literal, without allocating.
    func hasPrefixIgnoringASCIICase(_ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard utf8.count >= count else { return false }
        var index = 0
        for byte in utf8.prefix(count) {
            let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
            guard folded == lowercase.utf8Start[index] else { return false }
            index += 1
        }
        return true
    }
}

extension Substring {
    /// Without RFC 9110's optional whitespace (spaces and tabs) at either end, without
    /// allocating. Foundation's trimming goes through UTF-16 and character sets, far too slow for
    /// every header value.
    func trimmingOWS() -> Substring {
        var start = utf8.startIndex
        var end = utf8.endIndex
        while start < end, utf8[start] == 0x20 || utf8[start] == 0x09 { start = utf8.index(after: start) }
        while end > start, utf8[utf8.index(before: end)] == 0x20 || utf8[utf8.index(before: end)] == 0x09 { end = utf8.index(before: end) }
        return self[start..<end]
    }
}
