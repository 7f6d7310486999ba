import NIOHTTP1

/// When a request that failed before any response byte arrived may go to another backend.
public struct RetryPolicy: Sendable, Equatable {
    /// Where the attempt failed.
    public enum Failure: Sendable {
        /// Connecting failed: the backend saw nothing of the request.
        case connect
        /// The connection broke after (part of) the request was sent, before the response.
        case afterSend
    }

    /// Total attempts, the first included.
    public var maxAttempts: Int
    /// How much request body is kept so that it can be sent again.
    public var bufferLimit: Int

    public init(maxAttempts: Int = DefaultMaxAttempts, bufferLimit: Int = DefaultRetryBufferLimit) {
        self.maxAttempts = maxAttempts
        self.bufferLimit = bufferLimit
    }

    /// Methods a client may repeat without changing the outcome (RFC 9110 §9.2.2).
    public static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return false
        }
    }

    /// - Parameters:
    ///   - attempts: attempts made so far, the failed one included.
    ///   - replayable: the whole body received so far is still buffered.
    public func shouldRetry(method: HTTPMethod, failure: Failure, attempts: Int, replayable: Bool) -> Bool {
        guard attempts < maxAttempts, replayable else { return false }
        switch failure {
        case .connect: return true
        case .afterSend: return Self.isIdempotent(method)
        }
    }
}
