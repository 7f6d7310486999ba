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
    /// The client reached the proxy over TLS: X-Forwarded-Proto says https.
    var secure = false

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
        let sentHost = host
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

        // One pass copies what goes on, in order; the fields the proxy sets are left out where
        // it replaces them and appended after. Every header of every request passes here, so
        // nothing is allocated beyond the new list.
        let trusted = trustedProxies.contains(clientAddress)
        let named = Self.connectionOptions(client.headers, protectingHost: true)
        let hostChanged = hostCount > 0 && host != sentHost
        var headers: [(String, String)] = []
        headers.reserveCapacity(client.headers.count + 6)
        var forwardedFor: String?
        var forwardedProto = false
        var forwardedHost = false
        var keepRequestID: Bool?
        for (name, value) in client.headers where !Self.isHopByHop(name) && !Self.isNamed(name, by: named) {
            switch Self.field(name) {
            case .host:
                if hostChanged { continue }
            case .xForwardedFor:
                // The list is appended to: its last entry is the one this proxy vouches for.
                forwardedFor = forwardedFor.map { $0 + ", " + value } ?? value
                continue
            case .xForwardedProto:
                // The host and scheme are ours unless a trusted proxy in front of us said them.
                forwardedProto = true
                if !trusted { continue }
            case .xForwardedHost:
                forwardedHost = true
                if !trusted { continue }
            case .xRequestID:
                // The frontend took the first one as the request's id when it was usable.
                if keepRequestID == nil { keepRequestID = value == requestID }
                if keepRequestID == false { continue }
            case .xBatonBackend, .xBatonRelease, .other:
                break
            }
            headers.append((name, value))
        }
        if hostCount == 0 || hostChanged { headers.append(("host", host)) }
        switch framing {
        case .length(let length): headers.append(("content-length", String(length)))
        case .chunked: headers.append(("transfer-encoding", "chunked"))
        // Methods whose body means something say "none" explicitly, as clients do (some servers
        // answer 411 otherwise).
        case .none where client.method == .POST || client.method == .PUT || client.method == .PATCH:
            headers.append(("content-length", "0"))
        case .none, .untilClose: break
        }
        if isWebSocket {
            headers.append(("connection", "upgrade"))
            headers.append(("upgrade", client.headers["upgrade"].joined(separator: ", ")))
        }
        headers.append(("x-forwarded-for", forwardedFor.map { $0 + ", " + clientAddress } ?? clientAddress))
        if !(forwardedProto && trusted) { headers.append(("x-forwarded-proto", secure ? "https" : "http")) }
        if !(forwardedHost && trusted) { headers.append(("x-forwarded-host", host)) }
        if keepRequestID != true { headers.append(("x-request-id", requestID)) }

        let head = HTTPRequestHead(version: .http1_1, method: client.method, uri: uri, headers: HTTPHeaders(headers))
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
        let named = Self.connectionOptions(backend.headers, protectingHost: false)
        var headers: [(String, String)] = []
        headers.reserveCapacity(backend.headers.count + 4)
        var keepRequestID: Bool?
        for (name, value) in backend.headers where !Self.isHopByHop(name) && !Self.isNamed(name, by: named) {
            switch Self.field(name) {
            case .xBatonBackend, .xBatonRelease:
                if !exposeBackendHeaders { continue }
            case .xRequestID:
                if keepRequestID == nil { keepRequestID = value == requestID }
                if keepRequestID == false { continue }
            case .host, .xForwardedFor, .xForwardedProto, .xForwardedHost, .other:
                break
            }
            headers.append((name, value))
        }
        var close = !keepAlive
        let upgraded = backend.status == .switchingProtocols
        switch MessageFraming.response(backend, to: method) {
        case .none:
            // HEAD and 304 may say what a GET would have carried (RFC 9110 §8.6).
            if method == .HEAD || backend.status == .notModified, case .value(let length) = MessageFraming.contentLength(backend.headers) {
                headers.append(("content-length", String(length)))
            }
        case .length(let length):
            headers.append(("content-length", String(length)))
        case .chunked, .untilClose:
            if clientVersion.minor >= 1 {
                // Exactly this spelling: it is what makes the encoder chunk the body.
                headers.append(("transfer-encoding", "chunked"))
            } else {
                close = true
            }
        }
        if upgraded {
            headers.append(("connection", "upgrade"))
            headers.append(("upgrade", backend.headers["upgrade"].joined(separator: ", ")))
        } else if close {
            headers.append(("connection", "close"))
        } else if clientVersion.minor == 0 {
            headers.append(("connection", "keep-alive"))
        }
        if exposeBackendHeaders { headers.append(("x-baton-backend", backendName)) }
        if keepRequestID != true { headers.append(("x-request-id", requestID)) }
        return (HTTPResponseHead(version: clientVersion, status: backend.status, headers: HTTPHeaders(headers)), close)
    }

    /// A 1xx (other than 101) that may go on to the client: HTTP/1.0 clients get none (RFC 9110 §15.2).
    func informational(_ backend: HTTPResponseHead, clientVersion: HTTPVersion) -> HTTPResponseHead? {
        guard clientVersion.minor >= 1 else { return nil }
        return HTTPResponseHead(version: clientVersion, status: backend.status, headers: Self.endToEnd(backend.headers))
    }

    /// Trailer fields that may be passed on: framing, routing and hop-by-hop fields never are
    /// (RFC 9110 §6.5.1).
    static func trailers(_ trailers: HTTPHeaders?) -> HTTPHeaders? {
        guard let trailers, !trailers.isEmpty else { return nil }
        let kept = endToEnd(trailers).filter { !forbiddenTrailers.contains($0.name.lowercased()) }
        return kept.isEmpty ? nil : HTTPHeaders(kept)
    }

    // MARK: Rules

    static let forbiddenTrailers: Set<String> = [
        "host", "content-type", "content-encoding", "content-range", "authorization", "cookie", "set-cookie", "expect",
    ]

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

    /// The headers without hop-by-hop fields and without the fields `Connection` names. Most
    /// messages carry none, or only `Connection: keep-alive`: one pass decides, and only then is a
    /// filtered copy made.
    static func endToEnd(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionOptions(headers, protectingHost: false)
        guard headers.contains(where: { isHopByHop($0.name) || isNamed($0.name, by: named) }) else { return headers }
        return HTTPHeaders(headers.filter { !isHopByHop($0.name) && !isNamed($0.name, by: named) })
    }

    /// The fields a `Connection` header names for removal (RFC 9110 §7.6.1): its tokens other
    /// than `close`, `keep-alive` and `upgrade`. Almost always none, and then nothing is allocated.
    static func connectionOptions(_ headers: HTTPHeaders, protectingHost: Bool) -> [Substring] {
        var named: [Substring] = []
        for (name, value) in headers where name.equalsIgnoringASCIICase("connection") {
            forEachListItem(value) { token in
                if !token.isEmpty, !token.equalsIgnoringASCIICase("close"), !token.equalsIgnoringASCIICase("keep-alive"),
                    !token.equalsIgnoringASCIICase("upgrade"), !(protectingHost && token.equalsIgnoringASCIICase("host"))
                {
                    named.append(token)
                }
            }
        }
        return named
    }

    static func isNamed(_ name: String, by options: [Substring]) -> Bool {
        !options.isEmpty && options.contains { $0.utf8.elementsEqual(name.utf8, by: asciiCaseInsensitiveEqual) }
    }

    static func asciiCaseInsensitiveEqual(_ a: UInt8, _ b: UInt8) -> Bool {
        a == b || (a | 0x20 == b | 0x20 && (a | 0x20) >= UInt8(ascii: "a") && (a | 0x20) <= UInt8(ascii: "z"))
    }

    /// Calls `body` with each comma-separated item of a list value, without its optional
    /// whitespace (empty items included), without allocating.
    static func forEachListItem(_ value: String, _ body: (Substring) -> Void) {
        let whole = Substring(value)
        var start = whole.utf8.startIndex
        var index = start
        while index < whole.utf8.endIndex {
            if whole.utf8[index] == UInt8(ascii: ",") {
                body(whole[start..<index].trimmingOWS())
                start = whole.utf8.index(after: index)
            }
            index = whole.utf8.index(after: index)
        }
        body(whole[start..<whole.utf8.endIndex].trimmingOWS())
    }

    /// The fields the rewriter itself sets or hides.
    enum Field { case host, xForwardedFor, xForwardedProto, xForwardedHost, xRequestID, xBatonBackend, xBatonRelease, other }

    /// Which of them `name` is: told apart by length first, so most names cost one comparison.
    static func field(_ name: String) -> Field {
        switch name.utf8.count {
        case 4: return name.equalsIgnoringASCIICase("host") ? .host : .other
        case 12: return name.equalsIgnoringASCIICase("x-request-id") ? .xRequestID : .other
        case 15:
            if name.equalsIgnoringASCIICase("x-forwarded-for") { return .xForwardedFor }
            if name.equalsIgnoringASCIICase("x-baton-backend") { return .xBatonBackend }
            return name.equalsIgnoringASCIICase("x-baton-release") ? .xBatonRelease : .other
        case 16: return name.equalsIgnoringASCIICase("x-forwarded-host") ? .xForwardedHost : .other
        case 17: return name.equalsIgnoringASCIICase("x-forwarded-proto") ? .xForwardedProto : .other
        default: return .other
        }
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

extension StringProtocol {
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
