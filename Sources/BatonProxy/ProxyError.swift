import BatonCore
import NIOHTTP1

/// An error response the proxy makes itself. `reason` goes in the `X-Baton-Error` header so
/// clients and tests can tell our errors from the backend's.
struct ProxyError: Error, Equatable, Sendable {
    var status: HTTPResponseStatus
    var reason: String
    var message: String

    static func noBackend(after hold: Duration) -> ProxyError {
        ProxyError(status: .serviceUnavailable, reason: "no-backend", message: "no backend became ready within \(hold.shortDescription)")
    }
    static func backendUnreachable(attempts: Int) -> ProxyError {
        ProxyError(status: .badGateway, reason: "backend-unreachable", message: "could not connect to a backend (\(attempts) attempt\(attempts == 1 ? "" : "s"))")
    }
    static func backendFailed(attempts: Int, retryable: Bool) -> ProxyError {
        ProxyError(
            status: .badGateway,
            reason: "backend-failed",
            message: "the backend closed the connection before responding (\(attempts) attempt\(attempts == 1 ? "" : "s")"
                + (retryable ? ")" : "; not retried: the request is not idempotent or its body was too large to replay)")
        )
    }
    static func backendProtocolError(_ detail: String) -> ProxyError {
        ProxyError(status: .badGateway, reason: "backend-protocol-error", message: "the backend broke HTTP: \(detail)")
    }
    static func requestBodyTimeout(_ timeout: Duration) -> ProxyError {
        ProxyError(status: .requestTimeout, reason: "body-timeout", message: "the request body stalled for \(timeout.shortDescription)")
    }
    static func responseTimeout(_ timeout: Duration) -> ProxyError {
        ProxyError(status: .gatewayTimeout, reason: "response-timeout", message: "the backend did not answer within \(timeout.shortDescription)")
    }
    static func malformedRequest(_ detail: String) -> ProxyError {
        ProxyError(status: .badRequest, reason: "malformed-request", message: "malformed request: \(detail)")
    }
    static func unsupportedTransferCoding(_ codings: String) -> ProxyError {
        ProxyError(status: .notImplemented, reason: "unsupported-transfer-coding", message: "transfer coding not supported: \(codings) (only chunked is)")
    }
    static let connectNotSupported = ProxyError(
        status: .notImplemented,
        reason: "connect-not-supported",
        message: "CONNECT is not supported: this is a reverse proxy, not a forward proxy"
    )
    static func holdQueueFull(_ limit: Int) -> ProxyError {
        ProxyError(status: .serviceUnavailable, reason: "hold-queue-full", message: "no backend is ready and \(limit) requests are already waiting for one")
    }
    static let headersTooLarge = ProxyError(
        status: .requestHeaderFieldsTooLarge,
        reason: "headers-too-large",
        message: "request header block too large"
    )
}
