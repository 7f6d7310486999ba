import NIOCore

/// The last handler of either connection of a WebSocket tunnel once the HTTP codecs are gone:
/// bytes it reads go to its `Tunnel`, which writes them to the other side. Reading stops while
/// the other side cannot take more, so a slow reader holds back a fast writer (backpressure).
final class TunnelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let side: Tunnel.Side
    weak var tunnel: Tunnel?
    private(set) var context: ChannelHandlerContext?
    private var readPending = false

    init(side: Tunnel.Side) {
        self.side = side
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    func read() {
        context?.read()
    }

    /// The other side can take more again.
    func resumeReading() {
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel?.received(unwrapInboundIn(data), from: side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        tunnel?.flush(from: side)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if tunnel?.otherSideWritable(of: side) ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        tunnel?.writabilityChanged(of: side)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown of the proxy: say goodbye with a close frame, as a drain does.
        if event is ChannelShouldQuiesceEvent {
            tunnel?.endGracefully()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tunnel?.closed(side)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
