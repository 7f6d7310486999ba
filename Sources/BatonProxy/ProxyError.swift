import BatonCore
import NIOHTTP1

/// An error response the proxy makes itself. `reason` goes in the `X-Baton-Error` header so
/// clients and tests can tell our errors from the backend's.
struct ProxyError: Equatable, Sendable {
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
    static func responseTimeout(_ timeout: Duration) -> ProxyError {
        ProxyError(status: .gatewayTimeout, reason: "response-timeout", message: "the backend did not answer within \(timeout.shortDescription)")
    }
    static func malformedRequest(_ detail: String) -> ProxyError {
        ProxyError(status: .badRequest, reason: "malformed-request", message: "malformed request: \(detail)")
    }
    static let headersTooLarge = ProxyError(
        status: .requestHeaderFieldsTooLarge,
        reason: "headers-too-large",
        message: "request header block too large"
    )
}
