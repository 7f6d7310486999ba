import NIOCore

/// Cuts clients that send a request head too slowly (slowloris) and connections idle too long
/// between requests. It sits before the HTTP decoder, so it sees the first raw byte of each
/// request; every connection has its own timer, so a slow client slows no one else.
final class HeaderTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private enum Phase { case idle, readingHead, busy }

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var phase = Phase.idle
    private var timer: Scheduled<Void>?

    init(headerTimeout: Duration, idleTimeout: Duration) {
        self.headerTimeout = .nanoseconds(Int64(headerTimeout.milliseconds) * 1_000_000)
        self.idleTimeout = .nanoseconds(Int64(idleTimeout.milliseconds) * 1_000_000)
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context: context, after: idleTimeout)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context: context, after: idleTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if phase == .idle {
            phase = .readingHead
            arm(context: context, after: headerTimeout)
        }
        context.fireChannelRead(data)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let event = event as? ProxyConnectionEvent else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        switch event {
        case .requestHeadReceived:
            phase = .busy
            timer?.cancel()
            timer = nil
        case .exchangeComplete:
            phase = .idle
            arm(context: context, after: idleTimeout)
        }
        promise?.succeed(())
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func arm(context: ChannelHandlerContext, after delay: TimeAmount) {
        timer?.cancel()
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = loopBound.value
            handler.timedOut(context: context)
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        timer = nil
        switch phase {
        case .readingHead:
            let body = "request header timeout: the request head did not arrive in time\n"
            let response =
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nx-baton-error: header-timeout\r\n"
                + "connection: close\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: response))))
                .assumeIsolated()
                .whenComplete { _ in context.close(promise: nil) }
        case .idle:
            context.close(promise: nil)
        case .busy:
            break
        }
    }
}
