import NIOCore
import NIOHTTP1

/// The request currently passing through one client connection, kept pure: the handler feeds
/// in what happened and performs the action that comes back. Requests on a connection run one at
/// a time (the handler queues pipelined ones).
struct ProxyRequestStateMachine {
    enum State: Equatable {
        case idle
        /// Choosing a backend (maybe held) or connecting to it; the body is buffered meanwhile.
        case awaitingBackend
        /// The request is going to the backend; no response byte yet.
        case forwarding
        /// The response head went to the client.
        case responding
        /// The response is complete but the client is still sending its body; it is read and
        /// dropped so the connection can be kept alive.
        case discardingRequestBody
        /// A WebSocket handshake was answered with 101: both connections are now a byte tunnel.
        case tunneling
        case closed
    }

    /// Which clock runs in the current state (the hold and the connect have their own).
    enum Timeout: Equatable {
        case none
        /// The client must keep sending its body.
        case requestBody
        /// The backend must keep answering (paused while the client cannot take more).
        case response
    }

    enum Action: Equatable {
        case none
        case selectBackend
        /// Send the head, the buffered body and, when the client finished, the end (with trailers).
        case sendRequest(head: HTTPRequestHead, body: [ByteBuffer], end: Bool, trailers: HTTPHeaders?)
        case forwardBody(ByteBuffer)
        case forwardEnd(trailers: HTTPHeaders?)
        /// The attempt failed in a way that is safe to repeat: give up this backend, pick another.
        case retry(RetryPolicy.Failure)
        /// Answer with our own error; give up the backend; close the client when asked.
        case respondWithError(ProxyError, closeConnection: Bool)
        case forwardResponseHead(HTTPResponseHead)
        /// A 1xx (100 Continue, 103 Early Hints) before the final response.
        case forwardInformational(HTTPResponseHead)
        /// The backend accepted the WebSocket handshake: pass on its 101, then tunnel bytes.
        case startTunnel(HTTPResponseHead)
        case forwardResponseBody(ByteBuffer)
        /// The backend's response ended: return or close its connection, end the client's response.
        case completeResponse(backendReusable: Bool)
        /// The client's body, read after an early response, is finished.
        case requestBodyDiscarded
        /// The response cannot be completed: close both sides.
        case abort
        /// The exchange is over but the client stalled or misbehaved after it: close the client.
        case closeClient
        /// The client went away: give up the backend.
        case abandonBackend
    }

    private(set) var state: State = .idle
    private let policy: RetryPolicy
    private var head: HTTPRequestHead?
    /// The request is a WebSocket handshake, so a 101 is expected and welcome.
    private var upgrade = false
    /// The request is a WebSocket handshake: it needs a new backend connection, since many
    /// servers (NIO's upgrader among them) upgrade only on a connection's first request.
    var wantsFreshConnection: Bool { upgrade }
    private var trailers: HTTPHeaders?
    private(set) var requestEnded = false
    private(set) var attempts = 0
    /// Body parts not yet written to the current backend.
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    /// Every body part so far, while they fit the retry buffer.
    private var replay: [ByteBuffer] = []
    private var replayBytes = 0
    private(set) var replayable = true

    init(policy: RetryPolicy) {
        self.policy = policy
    }

    var method: HTTPMethod { head?.method ?? .GET }

    /// Whether to read more from the client now. Reading stops while a backend is awaited and the
    /// buffered body is at the retry-buffer limit, or while the backend cannot take more.
    func wantsClientReads(backendWritable: Bool) -> Bool {
        switch state {
        case .awaitingBackend: return requestEnded || pendingBytes < policy.bufferLimit
        case .forwarding, .responding: return requestEnded || backendWritable
        case .idle, .discardingRequestBody, .closed: return true
        case .tunneling: return false
        }
    }

    var timeout: Timeout {
        switch state {
        case .forwarding: requestEnded ? .response : .requestBody
        case .responding: .response
        case .discardingRequestBody: .requestBody
        case .idle, .awaitingBackend, .tunneling, .closed: .none
        }
    }

    // MARK: Client events

    mutating func requestHead(_ head: HTTPRequestHead, upgrade: Bool = false) -> Action {
        guard state == .idle else { return .none }
        self = ProxyRequestStateMachine(policy: policy)
        self.head = head
        self.upgrade = upgrade
        state = .awaitingBackend
        return .selectBackend
    }

    mutating func requestBody(_ part: ByteBuffer) -> Action {
        switch state {
        case .awaitingBackend:
            pending.append(part)
            pendingBytes += part.readableBytes
            keepForReplay(part)
            return .none
        case .forwarding:
            keepForReplay(part)
            return .forwardBody(part)
        case .responding:
            return .forwardBody(part)
        case .idle, .discardingRequestBody, .tunneling, .closed:
            return .none
        }
    }

    mutating func requestEnd(trailers: HTTPHeaders? = nil) -> Action {
        switch state {
        case .awaitingBackend:
            requestEnded = true
            self.trailers = trailers
            return .none
        case .forwarding, .responding:
            requestEnded = true
            self.trailers = trailers
            return .forwardEnd(trailers: trailers)
        case .discardingRequestBody:
            requestEnded = true
            state = .idle
            return .requestBodyDiscarded
        case .idle, .tunneling, .closed:
            return .none
        }
    }

    /// The client sent nothing for the body timeout while it owed body bytes.
    mutating func requestBodyTimedOut(_ error: ProxyError) -> Action {
        switch state {
        case .forwarding:
            return fail(error)
        case .responding:
            state = .closed
            return .abort
        case .discardingRequestBody:
            state = .closed
            return .closeClient
        case .idle, .awaitingBackend, .tunneling, .closed:
            return .none
        }
    }

    /// The client took nothing of the response for the write timeout.
    mutating func clientWriteTimedOut() -> Action {
        switch state {
        case .responding:
            state = .closed
            return .abort
        case .discardingRequestBody, .idle:
            state = .closed
            return .closeClient
        case .awaitingBackend, .forwarding, .tunneling, .closed:
            return .none
        }
    }

    /// The request could not be parsed (bad framing, oversized headers).
    mutating func requestMalformed(_ error: ProxyError) -> Action {
        switch state {
        case .idle, .awaitingBackend, .forwarding, .discardingRequestBody:
            state = .closed
            return .respondWithError(error, closeConnection: true)
        case .responding:
            state = .closed
            return .abort
        case .tunneling, .closed:
            return .none
        }
    }

    mutating func clientClosed() -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .awaitingBackend, .forwarding, .responding: return .abandonBackend
        case .idle, .discardingRequestBody, .tunneling, .closed: return .none
        }
    }

    // MARK: Backend events

    mutating func backendConnected() -> Action {
        guard state == .awaitingBackend, let head else { return .abandonBackend }
        attempts += 1
        state = .forwarding
        let body = pending
        pending = []
        pendingBytes = 0
        return .sendRequest(head: head, body: body, end: requestEnded, trailers: trailers)
    }

    mutating func backendConnectFailed() -> Action {
        guard state == .awaitingBackend else { return .none }
        attempts += 1
        if policy.shouldRetry(method: method, failure: .connect, attempts: attempts, replayable: replayable) {
            return .retry(.connect)
        }
        return fail(.backendUnreachable(attempts: attempts))
    }

    /// No backend became ready within the hold limit.
    mutating func holdTimedOut(_ error: ProxyError) -> Action {
        guard state == .awaitingBackend else { return .none }
        return fail(error)
    }

    mutating func backendFailed() -> Action {
        switch state {
        case .forwarding:
            if policy.shouldRetry(method: method, failure: .afterSend, attempts: attempts, replayable: replayable) {
                state = .awaitingBackend
                pending = replay
                pendingBytes = replayBytes
                return .retry(.afterSend)
            }
            return fail(.backendFailed(attempts: attempts, retryable: RetryPolicy.isIdempotent(method) && replayable))
        case .responding:
            state = .closed
            return .abort
        case .idle, .awaitingBackend, .discardingRequestBody, .tunneling, .closed:
            return .none
        }
    }

    /// Nothing came from the backend for the response timeout.
    mutating func responseTimedOut(_ error: ProxyError) -> Action {
        switch state {
        case .forwarding: return fail(error)
        case .responding:
            state = .closed
            return .abort
        case .idle, .awaitingBackend, .discardingRequestBody, .tunneling, .closed: return .none
        }
    }

    mutating func responseHead(_ head: HTTPResponseHead) -> Action {
        guard state == .forwarding else { return .none }
        let code = head.status.code
        if code == 101 {
            // A 101 to a request that asked for no upgrade (or before the request ended) would
            // leave the connection in a protocol we never agreed to.
            guard upgrade && requestEnded else { return fail(.backendProtocolError("101 Switching Protocols to a request that did not ask for it")) }
            state = .tunneling
            return .startTunnel(head)
        }
        if code < 200 { return .forwardInformational(head) }
        state = .responding
        return .forwardResponseHead(head)
    }

    /// The backend's response head cannot be passed on (see `MessageFraming.responseProblem`).
    mutating func responseRefused(_ error: ProxyError) -> Action {
        guard state == .forwarding else { return .none }
        return fail(error)
    }

    mutating func responseBody(_ part: ByteBuffer) -> Action {
        guard state == .responding else { return .none }
        return .forwardResponseBody(part)
    }

    /// The response ends here though the backend would go on (an event stream ended by a drain
    /// between two events): the client's response is completed, the backend connection dropped.
    mutating func responseCut() -> Action {
        guard state == .responding else { return .none }
        state = requestEnded ? .idle : .discardingRequestBody
        return .completeResponse(backendReusable: false)
    }

    mutating func responseEnd() -> Action {
        guard state == .responding else { return .none }
        if requestEnded {
            state = .idle
            return .completeResponse(backendReusable: true)
        }
        // The backend answered before reading the whole body: its connection is out of step.
        state = .discardingRequestBody
        return .completeResponse(backendReusable: false)
    }

    // MARK: Helpers

    private mutating func fail(_ error: ProxyError) -> Action {
        // A client still sending its body is cut off rather than read to the end.
        let close = !requestEnded
        state = close ? .closed : .idle
        return .respondWithError(error, closeConnection: close)
    }

    private mutating func keepForReplay(_ part: ByteBuffer) {
        guard replayable else { return }
        replayBytes += part.readableBytes
        if replayBytes > policy.bufferLimit {
            replayable = false
            replay = []
        } else {
            replay.append(part)
        }
    }
}
