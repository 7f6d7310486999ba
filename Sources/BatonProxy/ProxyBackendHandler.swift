import NIOCore
import NIOHTTP1

/// What a client connection needs to hear from the backend connection it borrowed.
protocol ProxyBackendHandlerDelegate: AnyObject {
    func backendReceived(_ part: HTTPClientResponsePart)
    /// The end of one read from the backend: time to flush to the client.
    func backendReadComplete()
    func backendWritabilityChanged(isWritable: Bool)
    /// The connection broke (reset, closed early, error) while lent to this delegate.
    func backendFailed(_ error: any Error)
}

/// The last handler of a pooled backend connection. While lent it passes response parts to its
/// delegate (the client's `ProxyFrontendHandler`, on the same event loop) and lets the delegate
/// pause reads when the client cannot keep up.
final class ProxyBackendHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: BackendConnectionPool
    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false
    weak var delegate: (any ProxyBackendHandlerDelegate)?
    /// Set while the connection waits for the backend to close it (`awaitBackendClose`).
    private var onBackendClosed: (() -> Void)?
    private var closeDeadline: Scheduled<Void>?

    init(pool: BackendConnectionPool) {
        self.pool = pool
    }

    var isOpen: Bool { context?.channel.isActive ?? false }
    var channel: (any Channel)? { context?.channel }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var eventLoop: any EventLoop { pool.eventLoop }

    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func setReadsPaused(_ paused: Bool) {
        readsPaused = paused
        if !paused && readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Closes a connection that is idle or being given back; nobody is told.
    func close() {
        delegate = nil
        context?.close(promise: nil)
    }

    /// The backend said it closes the connection after a response that has now ended. A
    /// server that says so (a pre-fork worker, an HTTP/1.0 server) often holds its worker until
    /// its handler returns and it closes the socket, which may be well after the last byte
    /// (streaming teardown, work after the response). So the connection stays open and
    /// `closed` runs when the backend closes it, or at `grace`, when the proxy closes it itself.
    func awaitBackendClose(within grace: TimeAmount, then closed: @escaping () -> Void) {
        delegate = nil
        guard let context, context.channel.isActive else { return closed() }
        onBackendClosed = closed
        closeDeadline = context.eventLoop.assumeIsolated().scheduleTask(in: grace) { context.close(promise: nil) }
        // The close arrives as a read: read even if the client had paused this connection.
        setReadsPaused(false)
    }

    /// Closes a connection that may be in use (drain timeout): its borrower hears of it as a
    /// broken connection and retries or fails the request.
    func cut() {
        context?.close(promise: nil)
    }

    /// The connection leaves the pool for good and becomes the backend side of a WebSocket
    /// tunnel: `tunnel` goes in, this handler and the request encoder go out. The response
    /// decoder stays until `removeDecoder`, once the client side is ready for the bytes it holds.
    func becomeTunnel(_ tunnel: TunnelHandler) throws {
        guard let context else { throw ChannelError.ioOnClosedChannel }
        delegate = nil
        pool.forget(self)
        let pipeline = context.pipeline.syncOperations
        tunnelPipeline = pipeline
        try pipeline.addHandler(tunnel)
        pipeline.removeHandler(try pipeline.handler(type: HTTPRequestEncoder.self), promise: nil)
        pipeline.removeHandler(context: context, promise: nil)
    }

    private var tunnelPipeline: ChannelPipeline.SynchronousOperations?

    func removeDecoder() -> EventLoopFuture<Void> {
        guard let pipeline = tunnelPipeline else { return pool.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        tunnelPipeline = nil
        do {
            return pipeline.removeHandler(context: try pipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self))
        } catch {
            return pool.eventLoop.makeFailedFuture(error)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate else {
            // Bytes while idle in the pool: the exchange is out of step, so drop the connection.
            context.close(promise: nil)
            return
        }
        delegate.backendReceived(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.backendReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.backendWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool.forget(self)
        closeDeadline?.cancel()
        closeDeadline = nil
        if let closed = onBackendClosed {
            onBackendClosed = nil
            closed()
        }
        if let delegate {
            self.delegate = nil
            delegate.backendFailed(ChannelError.eof)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let delegate {
            self.delegate = nil
            delegate.backendFailed(error)
        }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }
}
