import BatonCore
import NIOCore
import NIOHTTP1

/// One per client connection: takes each request from the HTTP decoder, picks a backend,
/// borrows a pooled connection to it on this event loop and streams both ways with
/// backpressure. The decisions live in `ProxyRequestStateMachine`; this class performs them.
final class ProxyFrontendHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let pool: BackendPool
    private let configuration: ProxyConfiguration
    private let metrics: ProxyMetrics
    private var machine: ProxyRequestStateMachine
    private var context: ChannelHandlerContext?

    /// Bumped for every backend selection, so a late hold or connect result for an attempt that
    /// was abandoned is recognised and its backend given back.
    private var generation: UInt64 = 0
    private var backend: Backend?
    private var connection: ProxyBackendHandler?
    private var failedBackend: Backend?
    private var responseTimer = DeadlineTimer()
    private var lastBackendProgress = NIODeadline.now()
    private var readPending = false

    /// Pipelined requests that arrived while the previous response was still going out. They
    /// are queued here rather than by NIO's `HTTPServerPipelineHandler`, which stops reading
    /// (two `epoll_ctl` calls per request) even when nothing is pipelined.
    private var queued = CircularBuffer<QueuedEvent>()
    private var queuedBytes = 0
    /// Graceful shutdown: finish the current exchange, then close.
    private var quiescing = false
    /// The connection is being closed after the current response: nothing more is read into it.
    private var closing = false
    private var requestIDs = RequestID.Generator()
    private var requestCounters = RequestCounterCache()

    private var requestStart = NIODeadline.now()
    private var requestID = ""
    private var clientKeepAlive = true
    private var clientVersion = HTTPVersion.http1_1
    private var backendKeepAlive = true
    private var responseStatus = 0
    private var clientAddress = ""
    /// The in-flight gauge counts this request (not so for a request that never parsed).
    private var countedInFlight = false

    init(pool: BackendPool, configuration: ProxyConfiguration, metrics: ProxyMetrics) {
        self.pool = pool
        self.configuration = configuration
        self.metrics = metrics
        self.machine = ProxyRequestStateMachine(policy: configuration.retry)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientAddress = context.channel.remoteAddress?.ipAddress ?? ""
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Client side

    private enum QueuedEvent {
        case part(HTTPServerRequestPart)
        case error(HTTPParserError)
    }

    /// A new request may start only once the current one has been read to its end and answered.
    private var mustQueue: Bool {
        closing || !queued.isEmpty || (machine.state != .idle && machine.requestEnded)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if mustQueue {
            if case .body(let buffer) = part { queuedBytes += buffer.readableBytes }
            queued.append(.part(part))
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            guard machine.state == .idle else { return }
            requestStart = .now()
            metrics.requestStarted()
            countedInFlight = true
            context.triggerUserOutboundEvent(ProxyConnectionEvent.requestHeadReceived, promise: nil)
            clientKeepAlive = head.isKeepAlive
            clientVersion = head.version
            failedBackend = nil
            perform(machine.requestHead(upstreamHead(from: head)))
        case .body(let part):
            perform(machine.requestBody(part))
        case .end:
            perform(machine.requestEnd())
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if wantsClientReads {
            context.read()
        } else {
            readPending = true
        }
    }

    private var wantsClientReads: Bool {
        queuedBytes < configuration.retry.bufferLimit && machine.wantsClientReads(backendWritable: connection?.isWritable ?? true)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if machine.state == .idle && queued.isEmpty { context.close(promise: nil) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.setReadsPaused(!context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parserError = error as? HTTPParserError {
            if mustQueue {
                queued.append(.error(parserError))
                return
            }
            handle(parserError)
        } else {
            context.close(promise: nil)
        }
    }

    private func handle(_ parserError: HTTPParserError) {
        let proxyError: ProxyError =
            switch parserError {
            case .headerOverflow: .headersTooLarge
            case .unknown: .malformedRequest("invalid message framing (e.g. both Content-Length and Transfer-Encoding)")
            default: .malformedRequest(String(describing: parserError))
            }
        perform(machine.requestMalformed(proxyError))
    }

    /// Hands queued pipelined requests to the state machine once the exchange before them is over.
    private func deliverQueued(context: ChannelHandlerContext) {
        while let next = queued.first, !closing, !(machine.state != .idle && machine.requestEnded), machine.state != .closed {
            queued.removeFirst()
            switch next {
            case .part(let part):
                if case .body(let buffer) = part { queuedBytes -= buffer.readableBytes }
                handle(part, context: context)
            case .error(let error):
                handle(error)
            }
        }
    }

    // MARK: Actions

    private func perform(_ action: ProxyRequestStateMachine.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .selectBackend:
            selectBackend(context: context)
        case .sendRequest(let head, let body, let end):
            guard let connection else { return }
            connection.send(.head(head))
            for part in body { connection.send(.body(.byteBuffer(part))) }
            if end { connection.send(.end(nil)) }
            connection.flush()
            lastBackendProgress = .now()
            armResponseTimer(context: context)
        case .forwardBody(let part):
            connection?.send(.body(.byteBuffer(part)))
        case .forwardEnd:
            connection?.send(.end(nil))
            connection?.flush()
        case .retry:
            metrics.retried()
            failedBackend = backend
            releaseBackend(reusable: false)
            selectBackend(context: context)
        case .respondWithError(let error, let close):
            releaseBackend(reusable: false)
            respond(with: error, close: close || !keepClientConnection, context: context)
        case .forwardResponseHead(var head):
            responseStatus = Int(head.status.code)
            backendKeepAlive = head.isKeepAlive
            head.version = clientVersion
            stripHopByHop(&head.headers)
            head.headers.add(name: "x-baton-backend", value: backend?.name ?? "")
            head.headers.add(name: "x-request-id", value: requestID)
            if !keepClientConnection { head.headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .forwardResponseBody(let part):
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
        case .completeResponse(let reusable):
            // Everything is settled before the end is written: writing it may at once deliver
            // the next pipelined request to this handler.
            releaseBackend(reusable: reusable && backendKeepAlive)
            finishRequest(status: responseStatus, backendName: lastBackendName)
            if machine.requestEnded {
                context.triggerUserOutboundEvent(ProxyConnectionEvent.exchangeComplete, promise: nil)
            }
            if keepClientConnection {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                closing = true
                context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        case .requestBodyDiscarded:
            context.triggerUserOutboundEvent(ProxyConnectionEvent.exchangeComplete, promise: nil)
        case .abort:
            releaseBackend(reusable: false)
            finishRequest(status: responseStatus, backendName: lastBackendName)
            context.close(promise: nil)
        case .abandonBackend:
            releaseBackend(reusable: false)
            endInFlight()
        }
        if machine.state == .idle && !queued.isEmpty { deliverQueued(context: context) }
        resumeClientReadsIfWanted(context: context)
    }

    /// Whether the client connection stays open after this exchange.
    private var keepClientConnection: Bool { clientKeepAlive && !quiescing }

    private var lastBackendName = ""

    private func selectBackend(context: ChannelHandlerContext) {
        generation &+= 1
        if let selected = pool.trySelect(excluding: failedBackend) {
            backendSelected(selected, context: context)
            return
        }
        let generation = self.generation
        pool.hold(on: context.eventLoop, timeout: configuration.maxHold).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let selected):
                guard generation == self.generation, self.machine.state == .awaitingBackend else {
                    selected.requestFinished()
                    return
                }
                self.backendSelected(selected, context: context)
            case .failure:
                guard generation == self.generation else { return }
                self.metrics.holdTimedOut()
                self.perform(self.machine.holdTimedOut(.noBackend(after: self.configuration.maxHold)))
            }
        }
    }

    private func backendSelected(_ selected: Backend, context: ChannelHandlerContext) {
        backend = selected
        lastBackendName = selected.name
        let connections = selected.connectionPool(for: context.eventLoop)
        if let idle = connections.takeIdle() {
            connected(idle)
            return
        }
        let generation = self.generation
        connections.connect().assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection):
                guard generation == self.generation, self.machine.state == .awaitingBackend else {
                    connections.release(connection, reusable: true, backendRoutable: selected.isRoutable)
                    return
                }
                self.connected(connection)
            case .failure:
                self.pool.connectFailed(selected)
                guard generation == self.generation else { return }
                self.perform(self.machine.backendConnectFailed())
            }
        }
    }

    private func connected(_ connection: ProxyBackendHandler) {
        self.connection = connection
        connection.delegate = self
        connection.setReadsPaused(!(context?.channel.isWritable ?? true))
        perform(machine.backendConnected())
    }

    /// Gives the current backend back: its in-flight count, and its connection to the pool
    /// (or closed, when the exchange did not end cleanly).
    private func releaseBackend(reusable: Bool) {
        if let connection {
            connection.delegate = nil
            if let backend {
                backend.connectionPool(for: connection.eventLoop)
                    .release(connection, reusable: reusable, backendRoutable: backend.isRoutable)
            } else {
                connection.close()
            }
            self.connection = nil
        }
        if let backend {
            backend.requestFinished()
            self.backend = nil
        }
    }

    private func endInFlight() {
        if countedInFlight { metrics.requestEnded() }
        countedInFlight = false
    }

    private func finishRequest(status: Int, backendName: String) {
        endInFlight()
        requestCounters.counter(backend: backendName, status: status, metrics: metrics).increment()
        requestCounters.latency(backend: backendName, metrics: metrics).recordNanoseconds((NIODeadline.now() - requestStart).nanoseconds)
    }

    private func respond(with error: ProxyError, close: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        let body = ByteBuffer(string: error.message + "\n")
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "x-baton-error", value: error.reason)
        if !requestID.isEmpty { headers.add(name: "x-request-id", value: requestID) }
        if close { headers.add(name: "connection", value: "close") }
        finishRequest(status: Int(error.status.code), backendName: "")
        if !close { context.triggerUserOutboundEvent(ProxyConnectionEvent.exchangeComplete, promise: nil) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: clientVersion, status: error.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if close { closing = true }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    private func resumeClientReadsIfWanted(context: ChannelHandlerContext) {
        if readPending && wantsClientReads {
            readPending = false
            context.read()
        }
    }

    // MARK: Timeout

    /// One timer per request: when it fires it checks how long the backend has been silent and
    /// re-arms for the rest, so progress only stores a timestamp.
    private func armResponseTimer(context: ChannelHandlerContext) {
        let deadline = lastBackendProgress + configuration.responseTimeout.timeAmount
        responseTimer.fire(by: deadline, on: context.eventLoop) { [self] in responseTimerFired() }
    }

    private func responseTimerFired() {
        responseTimer.fired()
        guard let context else { return }
        switch machine.state {
        case .forwarding, .responding:
            if NIODeadline.now() < lastBackendProgress + configuration.responseTimeout.timeAmount {
                armResponseTimer(context: context)
            } else {
                perform(machine.responseTimedOut(.responseTimeout(configuration.responseTimeout)))
            }
        case .idle, .awaitingBackend, .discardingRequestBody, .closed:
            break  // armed again when the next request is sent
        }
    }

    // MARK: Headers

    private func upstreamHead(from head: HTTPRequestHead) -> HTTPRequestHead {
        var upstream = head
        upstream.version = .http1_1
        stripHopByHop(&upstream.headers, keepingFraming: true)
        if let forwarded = upstream.headers.first(name: "x-forwarded-for") {
            upstream.headers.replaceOrAdd(name: "x-forwarded-for", value: "\(forwarded), \(clientAddress)")
        } else {
            upstream.headers.add(name: "x-forwarded-for", value: clientAddress)
        }
        if !upstream.headers.contains(name: "x-forwarded-proto") {
            upstream.headers.add(name: "x-forwarded-proto", value: "http")
        }
        if !upstream.headers.contains(name: "x-forwarded-host"), let host = head.headers.first(name: "host") {
            upstream.headers.add(name: "x-forwarded-host", value: host)
        }
        if let id = upstream.headers.first(name: "x-request-id"), !id.isEmpty, id.utf8.count <= 200 {
            requestID = id
        } else {
            requestID = requestIDs.next()
            upstream.headers.replaceOrAdd(name: "x-request-id", value: requestID)
        }
        return upstream
    }
}

extension ProxyFrontendHandler: ProxyBackendHandlerDelegate {
    func backendReceived(_ part: HTTPClientResponsePart) {
        lastBackendProgress = .now()
        switch part {
        case .head(let head): perform(machine.responseHead(head))
        case .body(let buffer): perform(machine.responseBody(buffer))
        case .end: perform(machine.responseEnd())
        }
    }

    func backendReadComplete() {
        context?.flush()
    }

    func backendWritabilityChanged(isWritable: Bool) {
        guard let context else { return }
        resumeClientReadsIfWanted(context: context)
    }

    func backendFailed(_ error: any Error) {
        perform(machine.backendFailed())
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection and are never forwarded.
/// `Transfer-Encoding` is kept on requests: the encoder re-frames the body from it.
func stripHopByHop(_ headers: inout HTTPHeaders, keepingFraming: Bool = false) {
    // Most messages carry none, or only `Connection: keep-alive`: one pass over the names
    // decides, and only then is a filtered copy made (one allocation instead of a scan per name).
    guard headers.contains(where: { isHopByHop($0.name, keepingFraming: keepingFraming) }) else { return }
    var named: [String] = []
    for value in headers[canonicalForm: "connection"] {
        let token = value.lowercased()
        if token != "close" && token != "keep-alive" { named.append(token) }
    }
    headers = HTTPHeaders(headers.filter { header in
        !isHopByHop(header.name, keepingFraming: keepingFraming) && (named.isEmpty || !named.contains(header.name.lowercased()))
    })
}

private func isHopByHop(_ name: String, keepingFraming: Bool) -> Bool {
    switch name.utf8.count {
    case 2: return name.lowercased() == "te"
    case 7: return ["trailer", "upgrade"].contains(name.lowercased())
    case 10: return ["connection", "keep-alive"].contains(name.lowercased())
    case 16: return name.lowercased() == "proxy-connection"
    case 17: return !keepingFraming && name.lowercased() == "transfer-encoding"
    case 18: return name.lowercased() == "proxy-authenticate"
    default: return false
    }
}

extension Duration {
    var timeAmount: TimeAmount { .nanoseconds(Int64(milliseconds) * 1_000_000) }
}
