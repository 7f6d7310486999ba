import BatonCore
import NIOCore
import NIOHTTP1

/// One per client connection: takes each request from the HTTP decoder, picks a backend,
/// borrows a pooled connection to it on this event loop and streams both ways with
/// backpressure. The decisions live in `ProxyRequestStateMachine`; this class performs them.
final class ProxyFrontendHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let pool: BackendPool
    private let configuration: ProxyConfiguration
    private let metrics: ProxyMetrics
    private let rewriter: HeadRewriter
    private let accessLog: AccessLog
    /// The connection's header and idle timeouts, told where each request stands.
    private let connectionTimeouts: HeaderTimeoutHandler
    /// This event loop's timers.
    private let wheel: TimerWheel
    private var machine: ProxyRequestStateMachine
    private var context: ChannelHandlerContext?

    /// Bumped for every backend selection, so a late hold or connect result for an attempt that
    /// was abandoned is recognised and its backend given back.
    private var generation: UInt64 = 0
    private var backend: Backend?
    private var connection: ProxyBackendHandler?
    private var failedBackend: Backend?
    /// One timer per request for whichever clock `machine.timeout` says runs.
    private var requestTimer = DeadlineTimer()
    private var lastBackendProgress = NIODeadline.now()
    private var lastClientProgress = NIODeadline.now()
    /// Since when the client has not been writable (nil while it is).
    private var clientBlockedSince: NIODeadline?
    private var readPending = false
    /// The held request's place in the pool's queue, to give it up when the client goes away.
    private var holdTicket: BackendPool.HoldTicket?

    /// Pipelined requests that arrived while the previous response was still going out. They
    /// are queued here rather than by NIO's `HTTPServerPipelineHandler`, which stops reading
    /// (two `epoll_ctl` calls per request) even when nothing is pipelined. Small at first: every idle
    /// connection holds one, and most never queue anything.
    private var queued = CircularBuffer<QueuedEvent>(initialCapacity: 2)
    private var queuedBytes = 0
    /// Graceful shutdown: finish the current exchange, then close.
    private var quiescing = false
    /// The connection is being closed after the current response: nothing more is read into it.
    private var closing = false
    private var requestIDs = RequestID.Generator()
    private var requestCounters = RequestCounterCache()

    private var requestStart = NIODeadline.now()
    private var requestID = ""
    private var requestMethod = HTTPMethod.GET
    private var requestTarget = ""
    /// The reason of the error the proxy answered with, for the access log.
    private var errorReason: String?
    private var clientKeepAlive = true
    private var clientVersion = HTTPVersion.http1_1
    private var backendKeepAlive = true
    /// The client's response must be the last on the connection (framing or the backend said so).
    private var closeAfterResponse = false
    private var responseStatus = 0
    private var responseTrailers: HTTPHeaders?
    /// The request asked for an upgrade (any `Upgrade` header). llhttp stops parsing after such a
    /// request by rules of its own, so unless the connection becomes a tunnel nothing more is read
    /// from it and it closes after the response: the client's next request goes on a new one.
    private var upgradeRequested = false
    private var clientAddress = ""
    /// Event boundaries of a `text/event-stream` response, which a drain may end between events.
    private var eventStream: EventStreamCursor?
    private var endAtEventBoundary = false
    /// The in-flight gauge counts this request (not so for a request that never parsed).
    private var countedInFlight = false
    /// With version affinity: the release the request is pinned to, and by what.
    private var pinned: String?
    /// Previous releases' assets, and the one this request gets from it (answered at its end).
    private let assets: AssetCache?
    private var keptAsset: (HTTPRequestHead, AssetCache.Asset)?
    private var pinSource = VersionAffinity.Source.none

    init(pool: BackendPool, configuration: ProxyConfiguration, metrics: ProxyMetrics, accessLog: AccessLog, connectionTimeouts: HeaderTimeoutHandler, wheel: TimerWheel, assets: AssetCache? = nil, secure: Bool = false) {
        self.assets = assets
        self.pool = pool
        self.wheel = wheel
        self.connectionTimeouts = connectionTimeouts
        self.accessLog = accessLog
        self.configuration = configuration
        self.metrics = metrics
        self.machine = ProxyRequestStateMachine(policy: configuration.retry)
        self.rewriter = HeadRewriter(trustedProxies: configuration.trustedProxies, exposeBackendHeaders: configuration.exposeBackendHeaders, secure: secure)
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
            // The decoder gives a new head only after the previous request's end.
            guard machine.state == .idle else {
                perform(machine.requestMalformed(.malformedRequest("request out of order")))
                return
            }
            requestStart = .now()
            lastClientProgress = requestStart
            metrics.requestStarted()
            countedInFlight = true
            connectionTimeouts.requestHeadReceived()
            clientKeepAlive = head.isKeepAlive
            clientVersion = head.version
            requestMethod = head.method
            requestTarget = head.uri
            errorReason = nil
            lastBackendName = ""
            closeAfterResponse = false
            responseTrailers = nil
            failedBackend = nil
            upgradeRequested = head.headers.contains(name: "upgrade")
            if configuration.affinity { (pinned, pinSource) = VersionAffinity.pin(of: head.headers) }
            if let asset = assets?.lookup(head), !upgradeRequested {
                keptAsset = (head, asset)
                return
            }
            if let id = head.headers.first(name: "x-request-id"), !id.isEmpty, id.utf8.count <= 200 {
                requestID = id
            } else {
                requestID = requestIDs.next()
            }
            switch rewriter.request(head, clientAddress: clientAddress, requestID: requestID) {
            case .success(let upstream):
                perform(machine.requestHead(upstream.head, upgrade: upstream.isWebSocket))
            case .failure(let error):
                perform(machine.requestMalformed(error))
            }
        case .body(let part):
            lastClientProgress = .now()
            perform(machine.requestBody(part))
        case .end(let trailers):
            lastClientProgress = .now()
            if let (head, asset) = keptAsset {
                keptAsset = nil
                respond(with: asset, to: head, context: context)
                return
            }
            perform(machine.requestEnd(trailers: HeadRewriter.trailers(trailers)))
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

    /// Pipelined requests are read ahead only up to a few requests and the retry buffer's size,
    /// so a client that sends without reading cannot make the proxy buffer without limit.
    private var wantsClientReads: Bool {
        queuedBytes < configuration.retry.bufferLimit && queued.count < configuration.maxQueuedRequests
            && !(upgradeRequested && machine.requestEnded)
            && machine.wantsClientReads(backendWritable: connection?.isWritable ?? true)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if machine.state == .idle && queued.isEmpty && connectionTimeouts.isBetweenRequests { context.close(promise: nil) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        connection?.setReadsPaused(!writable)
        if writable {
            // The backend was paused for the client, not silent: its clock restarts.
            clientBlockedSince = nil
            lastBackendProgress = .now()
        } else {
            clientBlockedSince = .now()
            armRequestTimer(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.clientClosed())
        // The timer's closure holds this handler, and through it the whole channel, until it
        // fires: under connection churn that was every closed connection of the last response
        // timeout.
        requestTimer.cancel()
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
        if machine.state == .idle {
            // No request of this error's own: don't answer with the previous one's method/version.
            requestMethod = .GET
            clientVersion = .http1_1
        }
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
        case .sendRequest(var head, let body, let end, let trailers):
            guard let connection else { return }
            // The app may put it on its own calls to keep them within this release.
            if configuration.affinity, let release = backend?.release { head.headers.replaceOrAdd(name: VersionAffinity.pinHeader, value: release) }
            connection.send(.head(head))
            for part in body { connection.send(.body(.byteBuffer(part))) }
            if end { connection.send(.end(trailers)) }
            connection.flush()
            lastBackendProgress = .now()
        case .forwardBody(let part):
            connection?.send(.body(.byteBuffer(part)))
        case .forwardEnd(let trailers):
            connection?.send(.end(trailers))
            connection?.flush()
            // The response clock starts once the request is fully sent.
            lastBackendProgress = .now()
        case .retry:
            metrics.retried()
            failedBackend = backend
            releaseBackend(reusable: false)
            selectBackend(context: context)
        case .respondWithError(let error, let close):
            releaseBackend(reusable: false)
            respond(with: error, close: close || !keepClientConnection, context: context)
        case .forwardResponseHead(let backendHead):
            responseStatus = Int(backendHead.status.code)
            backendKeepAlive = backendHead.isKeepAlive
            let (rewritten, close) = rewriter.response(
                backendHead,
                to: requestMethod,
                clientVersion: clientVersion,
                keepAlive: keepClientConnection,
                backendName: backend?.name ?? "",
                requestID: requestID
            )
            closeAfterResponse = close
            var head = rewritten
            if configuration.affinity {
                for (name, value) in VersionAffinity.responseHeaders(pinned: pinned, source: pinSource, served: backend?.release) {
                    head.headers.add(name: name, value: value)
                }
            }
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            if let backend, Self.isEndableEventStream(backendHead, method: requestMethod) {
                eventStream = EventStreamCursor()
                backend.exchangeOpened(self, on: context.eventLoop)
            }
        case .forwardInformational(let backendHead):
            if let head = rewriter.informational(backendHead, clientVersion: clientVersion) {
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            }
        case .startTunnel(let backendHead):
            startTunnel(backendHead, context: context)
            return
        case .forwardResponseBody(let part):
            if var cursor = eventStream {
                if endAtEventBoundary {
                    // Up to the end of the event in progress, then the response ends there.
                    let length = cursor.advance(over: part.readableBytesView, stoppingAtBoundary: true)
                    eventStream = cursor
                    if let head = part.getSlice(at: part.readerIndex, length: length) {
                        context.write(wrapOutboundOut(.body(.byteBuffer(head))), promise: nil)
                    }
                    if cursor.atBoundary { perform(machine.responseCut()) }
                    return
                }
                _ = cursor.advance(over: part.readableBytesView)
                eventStream = cursor
            }
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
        case .completeResponse(let reusable):
            // Everything is settled before the end is written: writing it may at once deliver
            // the next pipelined request to this handler.
            let served = backend
            releaseBackend(reusable: reusable)
            finishRequest(status: responseStatus, backendName: lastBackendName, served: served)
            if machine.requestEnded {
                connectionTimeouts.exchangeComplete()
            }
            let trailers = responseTrailers
            responseTrailers = nil
            if keepClientConnection && !closeAfterResponse {
                context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            } else {
                closing = true
                context.writeAndFlush(wrapOutboundOut(.end(trailers))).assumeIsolated().whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        case .requestBodyDiscarded:
            connectionTimeouts.exchangeComplete()
            if !keepClientConnection || closeAfterResponse {
                closing = true
                context.close(promise: nil)
            }
        case .abort:
            let served = backend
            releaseBackend(reusable: false)
            finishRequest(status: responseStatus, backendName: lastBackendName, served: served)
            context.close(promise: nil)
        case .closeClient:
            closing = true
            context.close(promise: nil)
        case .abandonBackend:
            releaseBackend(reusable: false)
            endInFlight()
        }
        if machine.timeout != .none { armRequestTimer(context: context) }
        if machine.state == .idle && !queued.isEmpty { deliverQueued(context: context) }
        resumeClientReadsIfWanted(context: context)
    }

    /// Whether the client connection stays open after this exchange.
    private var keepClientConnection: Bool { clientKeepAlive && !quiescing && !upgradeRequested }

    private var lastBackendName = ""

    private func selectBackend(context: ChannelHandlerContext) {
        generation &+= 1
        if let selected = pool.trySelect(excluding: failedBackend, pinned: pinned) {
            backendSelected(selected, context: context)
            return
        }
        let generation = self.generation
        let (held, ticket) = pool.hold(on: context.eventLoop, timeout: configuration.maxHold)
        holdTicket = ticket
        held.assumeIsolated().whenComplete { result in
            if generation == self.generation { self.holdTicket = nil }
            switch result {
            case .success(let selected):
                guard generation == self.generation, self.machine.state == .awaitingBackend else {
                    selected.requestFinished()
                    return
                }
                self.backendSelected(selected, context: context)
            case .failure(let error):
                guard generation == self.generation else { return }
                if error is HoldQueueFull {
                    self.perform(self.machine.holdTimedOut(.holdQueueFull(self.configuration.maxHeld)))
                } else if error is HoldTimeout {
                    self.metrics.holdTimedOut()
                    self.perform(self.machine.holdTimedOut(.noBackend(after: self.configuration.maxHold)))
                }
            }
        }
    }

    /// The client went away while its request was held: it leaves the queue at once.
    private func cancelHold() {
        guard let ticket = holdTicket else { return }
        holdTicket = nil
        generation &+= 1
        pool.cancelHold(ticket)
    }

    private func backendSelected(_ selected: Backend, context: ChannelHandlerContext) {
        backend = selected
        lastBackendName = selected.name
        let connections = selected.connectionPool(for: context.eventLoop)
        if !machine.wantsFreshConnection, let idle = connections.takeIdle() {
            connected(idle)
            return
        }
        let generation = self.generation
        connections.connect(fresh: machine.wantsFreshConnection).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection):
                guard generation == self.generation, self.machine.state == .awaitingBackend else {
                    connections.release(connection, reusable: true, backendRoutable: selected.isRoutable)
                    return
                }
                self.connected(connection)
            case .failure(let error):
                if BackendConnectionPool.isBackendFault(error) { self.pool.connectFailed(selected) }
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
    /// (or closed, when the exchange did not end cleanly). When the backend ended a clean
    /// exchange saying it closes the connection, the request counts against it until it does,
    /// so no other request is sent to a worker that is still finishing this one.
    private func releaseBackend(reusable: Bool) {
        cancelHold()
        if eventStream != nil { backend?.exchangeClosed(self) }
        eventStream = nil
        endAtEventBoundary = false
        if reusable && !backendKeepAlive, let connection, let backend {
            connection.awaitBackendClose(within: TimeAmount(configuration.backendCloseGrace)) { backend.requestFinished() }
            self.connection = nil
            self.backend = nil
            return
        }
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

    /// Counts the finished request: metrics, the access log, and the stats of the backend that
    /// served it (on this loop's pool, without a lock), which the rollout's analysis reads.
    private func finishRequest(status: Int, backendName: String, served: Backend? = nil) {
        endInFlight()
        let elapsed = (NIODeadline.now() - requestStart).nanoseconds
        if accessLog.wants(status: status, attempts: machine.attempts) {
            accessLog.record(AccessLog.Entry(
                time: "", client: clientAddress, method: requestMethod.rawValue, target: String(requestTarget.prefix(2048)),
                status: status, backend: backendName.isEmpty ? lastBackendName : backendName, attempts: machine.attempts,
                durationMs: Double(elapsed) / 1e6,
                error: errorReason, requestId: requestID
            ))
        }
        requestCounters.counter(backend: backendName, status: status, metrics: metrics).increment()
        requestCounters.latency(backend: backendName, metrics: metrics).recordNanoseconds(elapsed)
        if let served, let loop = context?.eventLoop { served.connectionPool(for: loop).stats.record(status: status, nanoseconds: elapsed) }
    }

    private func respond(with error: ProxyError, close: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        let body = ByteBuffer(string: error.message + "\n")
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "x-baton-error", value: error.reason)
        if !requestID.isEmpty { headers.add(name: "x-request-id", value: requestID) }
        if close { headers.add(name: "connection", value: "close") }
        errorReason = error.reason
        finishRequest(status: Int(error.status.code), backendName: "")
        if !close { connectionTimeouts.exchangeComplete() }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: clientVersion, status: error.status, headers: headers))), promise: nil)
        // A response to HEAD has no body; nothing else here knows the method.
        if requestMethod != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        if close { closing = true }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            // A client that reads nothing still gets closed.
            context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(configuration.writeTimeout)) { context.close(promise: nil) }
        }
    }

    /// Answers from the asset cache; the machine stayed idle, as for a request never forwarded.
    private func respond(with asset: AssetCache.Asset, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let (answer, body) = AssetCache.response(asset, to: head, exposeRelease: configuration.exposeBackendHeaders)
        var responseHead = answer
        if !requestID.isEmpty { responseHead.headers.add(name: "x-request-id", value: requestID) }
        let close = !keepClientConnection
        if close { responseHead.headers.add(name: "connection", value: "close") }
        finishRequest(status: Int(responseHead.status.code), backendName: "")
        connectionTimeouts.exchangeComplete()
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if close {
            closing = true
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else if !queued.isEmpty {
            deliverQueued(context: context)
        }
    }

    private func resumeClientReadsIfWanted(context: ChannelHandlerContext) {
        if readPending && wantsClientReads {
            readPending = false
            context.read()
        }
    }

    // MARK: Timeouts

    /// The running clock's deadline: the client's body progress, the backend's answer, or (while
    /// the client takes nothing) the write timeout. Progress only stores a time; the timer, when
    /// it fires, re-arms for whatever is left.
    private var currentDeadline: NIODeadline? {
        switch machine.timeout {
        case .none:
            return nil
        case .requestBody:
            // A backend that stopped reading the body holds the client back: not the client's fault.
            return max(lastClientProgress, lastBackendProgress) + TimeAmount(configuration.bodyTimeout)
        case .response:
            if let blocked = clientBlockedSince, machine.state == .responding { return blocked + TimeAmount(configuration.writeTimeout) }
            return lastBackendProgress + TimeAmount(configuration.responseTimeout)
        }
    }

    private func armRequestTimer(context: ChannelHandlerContext) {
        guard let deadline = currentDeadline, requestTimer.needsArming(by: deadline) else { return }
        requestTimer.fire(by: deadline, on: wheel) { [self] in requestTimerFired() }
    }

    private func requestTimerFired() {
        requestTimer.fired()
        guard let context, let deadline = currentDeadline else { return }
        if NIODeadline.now() < deadline {
            armRequestTimer(context: context)
            return
        }
        switch machine.timeout {
        case .none:
            break
        case .requestBody:
            perform(machine.requestBodyTimedOut(.requestBodyTimeout(configuration.bodyTimeout)))
        case .response:
            if clientBlockedSince != nil && machine.state == .responding {
                perform(machine.clientWriteTimedOut())
            } else {
                perform(machine.responseTimedOut(.responseTimeout(configuration.responseTimeout)))
            }
        }
    }

    // MARK: Event streams

    /// A server-sent event stream whose length is not fixed, so it can be ended between events.
    static func isEndableEventStream(_ head: HTTPResponseHead, method: HTTPMethod) -> Bool {
        guard let type = head.headers.first(name: "content-type"), type.hasPrefixIgnoringASCIICase("text/event-stream") else { return false }
        switch MessageFraming.response(head, to: method) {
        case .chunked, .untilClose: return true
        case .none, .length: return false
        }
    }

    // MARK: Upgrades

    /// The backend accepted a WebSocket handshake: pass its 101 on, then replace the HTTP
    /// handlers of both connections with a byte tunnel. Bytes either decoder had buffered past
    /// the handshake are handed on to the tunnel as the decoders leave.
    private func startTunnel(_ backendHead: HTTPResponseHead, context: ChannelHandlerContext) {
        guard let connection, let backend else { return }
        responseStatus = 101
        let (head, _) = rewriter.response(
            backendHead, to: requestMethod, clientVersion: clientVersion, keepAlive: true,
            backendName: backend.name, requestID: requestID
        )
        context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
        finishRequest(status: 101, backendName: backend.name, served: backend)
        requestTimer.cancel()
        self.connection = nil
        self.backend = nil
        // The 101's end is still on its way through the backend's decoder: the surgery waits for
        // the next tick, off both decoders' call stacks.
        let backendChannel = connection.channel
        context.eventLoop.assumeIsolated().execute { [self] in
            connection.delegate = nil
            let tunnel = Tunnel(eventLoop: context.eventLoop)
            func giveUp() {
                tunnel.cut()
                backendChannel?.close(promise: nil)
                context.channel.close(promise: nil)
            }
            tunnel.onClose = { [weak tunnel] in
                if let tunnel { backend.exchangeClosed(tunnel) }
                backend.requestFinished()
            }
            backend.exchangeOpened(tunnel, on: context.eventLoop)
            // Parts queued here mean llhttp kept parsing past the handshake: they would reach
            // the tunnel as HTTP, so the connection is given up instead.
            guard context.channel.isActive, connection.isOpen, queued.isEmpty else { return giveUp() }
            let pipeline = context.pipeline.syncOperations
            do {
                // Tunnel handlers in and encoders out first; then the backend's decoder leaves
                // (its bytes go to the client, through no HTTP handler), then the client's.
                try connection.becomeTunnel(tunnel.backend)
                try pipeline.addHandler(tunnel.client)
                let decoder = try pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
                pipeline.removeHandler(try pipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
                pipeline.removeHandler(context: context, promise: nil)
                connection.removeDecoder()
                    .flatMap { pipeline.removeHandler(context: decoder) }
                    .assumeIsolated()
                    .whenComplete { result in
                        guard case .success = result else { return giveUp() }
                        tunnel.client.read()
                        tunnel.backend.read()
                    }
            } catch {
                giveUp()
            }
        }
    }
}

extension ProxyFrontendHandler: DrainableExchange {
    /// A drain asks the event stream to end: at once between two events, else after the current one.
    func endGracefully() {
        guard let cursor = eventStream, machine.state == .responding else { return }
        if cursor.atBoundary {
            perform(machine.responseCut())
        } else {
            endAtEventBoundary = true
        }
    }
}

extension ProxyFrontendHandler: ProxyBackendHandlerDelegate {
    func backendReceived(_ part: HTTPClientResponsePart) {
        lastBackendProgress = .now()
        switch part {
        case .head(let head):
            if let problem = MessageFraming.responseProblem(head) {
                perform(machine.responseRefused(.backendProtocolError(problem)))
            } else {
                perform(machine.responseHead(head))
            }
        case .body(let buffer): perform(machine.responseBody(buffer))
        case .end(let trailers):
            responseTrailers = HeadRewriter.trailers(trailers)
            perform(machine.responseEnd())
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
