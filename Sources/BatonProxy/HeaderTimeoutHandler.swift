import NIOCore

/// Cuts clients that send a request head too slowly (slowloris) and connections idle too long
/// between requests. It sits before the HTTP decoder, so it sees the first raw byte of each
/// request; every connection has its own timer, so a slow client slows no one else. The
/// connection's `ProxyFrontendHandler` tells it where each request stands by calling it
/// directly (same channel, same event loop): an inbound-only handler costs the response path
/// nothing.
final class HeaderTimeoutHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase { case idle, readingHead, busy }

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var phase = Phase.idle
    /// When the current phase runs out (meaningless while busy).
    private var deadline = NIODeadline.distantFuture
    private var timer = DeadlineTimer()
    private let wheel: TimerWheel
    /// How far ahead the timer is armed: the shorter timeout, but not so short that a tiny
    /// timeout re-arms at every turn of the wheel.
    private let armingStep: TimeAmount
    private var context: ChannelHandlerContext?

    init(headerTimeout: Duration, idleTimeout: Duration, wheel: TimerWheel) {
        self.wheel = wheel
        self.armingStep = max(TimeAmount(min(headerTimeout, idleTimeout)), .milliseconds(500))
        self.headerTimeout = TimeAmount(headerTimeout)
        self.idleTimeout = TimeAmount(idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { enter(.readingHead, timeout: headerTimeout) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    /// A new connection owes its first request head within the header timeout, not the idle one.
    func channelActive(context: ChannelHandlerContext) {
        enter(.readingHead, timeout: headerTimeout)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if phase == .idle { enter(.readingHead, timeout: headerTimeout) }
        context.fireChannelRead(data)
    }

    /// Whether the connection is idle between requests with no byte of the next one read: a
    /// stopping proxy closes it now. A new connection, or one with a request on its way, is
    /// left to send it (and is answered with Connection: close) or to the header timeout.
    var isBetweenRequests: Bool { phase == .idle }

    /// A request head was decoded: the header timeout no longer applies.
    func requestHeadReceived() {
        phase = .busy
    }

    /// The exchange is over; the connection is idle until the next request's first byte.
    func exchangeComplete() {
        enter(.idle, timeout: idleTimeout)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        context.fireChannelInactive()
    }

    private func enter(_ phase: Phase, timeout: TimeAmount) {
        guard context != nil else { return }
        self.phase = phase
        let now = NIODeadline.now()
        deadline = now + timeout
        arm(now: now)
    }

    /// Arms the timer no further ahead than the shorter timeout: then a later phase's deadline
    /// is never earlier than the armed one, and a keep-alive connection re-arms once per period
    /// instead of on every request (the timer, when early, re-arms for what is left).
    private func arm(now: NIODeadline) {
        timer.fire(by: min(deadline, now + armingStep), on: wheel) { [self] in check() }
    }

    private func check() {
        timer.fired()
        guard let context, phase != .busy else { return }
        let now = NIODeadline.now()
        if now < deadline {
            arm(now: now)
            return
        }
        if phase == .readingHead {
            let body = "request header timeout: the request head did not arrive in time\n"
            let response =
                "HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nx-baton-error: header-timeout\r\n"
                + "connection: close\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
            context.writeAndFlush(NIOAny(ByteBuffer(string: response)))
                .assumeIsolated()
                .whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
