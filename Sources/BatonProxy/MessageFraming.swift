import Foundation
import NIOHTTP1

/// How a message body is delimited on the wire (RFC 9112 §6).
enum BodyFraming: Equatable, Sendable {
    case none
    case length(Int)
    case chunked
    /// A response whose body runs until the backend closes the connection.
    case untilClose
}

/// Reads the framing of a message the decoder accepted, so the proxy can write the framing
/// header of the message it forwards itself: the peer's `Content-Length` and
/// `Transfer-Encoding` are never copied, so no spelling of them can frame a body one way for us
/// and another way for the next hop.
enum MessageFraming {
    /// The request's body framing, or why the request is refused (it is then answered and the
    /// connection closed, since where its body ends cannot be trusted).
    static func request(_ head: HTTPRequestHead) -> Result<BodyFraming, ProxyError> {
        let codings = transferCodings(head.headers)
        let framing: BodyFraming
        if !codings.isEmpty {
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            guard head.version.major == 1, head.version.minor >= 1 else {
                return .failure(.malformedRequest("Transfer-Encoding in an HTTP/1.0 request"))
            }
            guard codings.last == "chunked" else {
                return .failure(.malformedRequest("Transfer-Encoding must end with chunked"))
            }
            // As nginx does: a coding we would have to pass on undecoded is refused, not guessed at.
            guard codings.count == 1 else {
                return .failure(.unsupportedTransferCoding(codings.dropLast().joined(separator: ", ")))
            }
            framing = .chunked
        } else {
            switch contentLength(head.headers) {
            case .invalid: return .failure(.malformedRequest("invalid Content-Length"))
            case .absent: framing = .none
            case .value(let length): framing = length == 0 ? .none : .length(length)
            }
        }
        if head.method == .TRACE && framing != .none {
            return .failure(.malformedRequest("a TRACE request must not have a body"))
        }
        return .success(framing)
    }

    /// The framing of a backend's response to a request with `method`, as its decoder read it.
    static func response(_ head: HTTPResponseHead, to method: HTTPMethod) -> BodyFraming {
        let status = head.status.code
        if method == .HEAD || status < 200 || status == 204 || status == 304 { return .none }
        let codings = transferCodings(head.headers)
        if !codings.isEmpty { return codings.last == "chunked" ? .chunked : .untilClose }
        switch contentLength(head.headers) {
        case .value(let length): return .length(length)
        case .absent, .invalid: return .untilClose
        }
    }

    /// Why a backend's response cannot be passed on, if it cannot: a transfer coding other than
    /// chunked would reach the client undecoded under a header we cannot honestly write (nginx
    /// answers 502 the same way).
    static func responseProblem(_ head: HTTPResponseHead) -> String? {
        let codings = transferCodings(head.headers)
        guard !codings.isEmpty, codings != ["chunked"] else { return nil }
        return "unsupported Transfer-Encoding '\(codings.joined(separator: ", "))'"
    }

    /// The transfer codings named, lowercased, in order (empty when there is no header).
    static func transferCodings(_ headers: HTTPHeaders) -> [String] {
        // Most messages have none: no array is built for them.
        guard headers.contains(name: "transfer-encoding") else { return [] }
        var codings: [String] = []
        for value in headers["transfer-encoding"] {
            for token in value.split(separator: ",") {
                let name = token.split(separator: ";", maxSplits: 1).first ?? ""
                codings.append(name.trimmingOWS().lowercased())
            }
        }
        return codings
    }

    enum ContentLength: Equatable { case absent, invalid, value(Int) }

    /// `Content-Length`, which may be repeated (or a list) only with one value (RFC 9110 §8.6).
    static func contentLength(_ headers: HTTPHeaders) -> ContentLength {
        var result: Int?
        var valid = true
        for (name, value) in headers where name.equalsIgnoringASCIICase("content-length") {
            HeadRewriter.forEachListItem(value) { digits in
                guard valid else { return }
                guard !digits.isEmpty, digits.utf8.count <= 18, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let length = Int(digits), result == nil || result == length
                else { return valid = false }
                result = length
            }
            if !valid { return .invalid }
        }
        return result.map(ContentLength.value) ?? .absent
    }
}
