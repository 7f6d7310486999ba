import NIOCore

/// A WebSocket connection passing through the proxy after its 101: two `TunnelHandler`s, one
/// on the client's connection and one on the backend's, on one event loop. It counts as one
/// request in flight on its backend until either side closes, so a drain waits for it; a drain
/// (or the proxy's shutdown) ends it with a close frame to each side, sent between frames.
final class Tunnel: DrainableExchange {
    enum Side { case client, backend }

    /// How long each side gets to answer our close frame before the connections are cut.
    static let closeGrace = TimeAmount.seconds(2)

    let client: TunnelHandler
    let backend: TunnelHandler
    private let eventLoop: any EventLoop
    /// Runs once, when the first side closes.
    var onClose: (() -> Void)?
    /// Frame boundaries of what goes to the backend (client frames) and to the client.
    private var toBackend = WebSocketFrameCursor()
    private var toClient = WebSocketFrameCursor()
    /// Close frames we still owe each side (set by `closeGracefully`, sent at a frame boundary).
    private var closeOwed: (client: Bool, backend: Bool) = (false, false)
    /// After our close frame went to a side, nothing more is sent to it.
    private var closeSent: (client: Bool, backend: Bool) = (false, false)
    private var finished = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.client = TunnelHandler(side: .client)
        self.backend = TunnelHandler(side: .backend)
        client.tunnel = self
        backend.tunnel = self
    }

    private func handler(_ side: Side) -> TunnelHandler { side == .client ? client : backend }
    private func other(_ side: Side) -> TunnelHandler { side == .client ? backend : client }

    func otherSideWritable(of side: Side) -> Bool { other(side).isWritable }

    func writabilityChanged(of side: Side) {
        if handler(side).isWritable { other(side).resumeReading() }
    }

    func received(_ bytes: ByteBuffer, from side: Side) {
        var bytes = bytes
        let destination: Side = side == .client ? .backend : .client
        if destination == .backend ? closeSent.backend : closeSent.client { return }
        if destination == .backend ? closeOwed.backend : closeOwed.client {
            // Forward up to the end of the frame in progress, then our close frame; drop the rest.
            var cursor = destination == .backend ? toBackend : toClient
            let upToBoundary = cursor.advance(over: bytes.readableBytesView, stoppingAtBoundary: true)
            if upToBoundary > 0, let slice = bytes.readSlice(length: upToBoundary) { other(side).write(slice) }
            if destination == .backend { toBackend = cursor } else { toClient = cursor }
            if cursor.atBoundary { sendClose(to: destination) }
            return
        }
        if destination == .backend {
            _ = toBackend.advance(over: bytes.readableBytesView)
        } else {
            _ = toClient.advance(over: bytes.readableBytesView)
        }
        other(side).write(bytes)
    }

    func flush(from side: Side) {
        other(side).flush()
    }

    /// Ends the WebSocket politely: a close frame (1001, going away) to each side at its next
    /// frame boundary, then both connections close after `closeGrace`.
    func endGracefully() {
        guard !finished, !closeOwed.client, !closeOwed.backend else { return }
        closeOwed = (true, true)
        if toClient.atBoundary { sendClose(to: .client) }
        if toBackend.atBoundary { sendClose(to: .backend) }
        eventLoop.assumeIsolated().scheduleTask(in: Self.closeGrace) { [self] in
            client.close()
            backend.close()
        }
    }

    private func sendClose(to side: Side) {
        let frame = WebSocketFrameCursor.closeFrame(code: 1001, masked: side == .backend)
        let target = handler(side)
        target.write(ByteBuffer(bytes: frame))
        target.flush()
        if side == .client { closeSent.client = true } else { closeSent.backend = true }
    }

    /// Setting up failed, or the proxy gives up on it: close both sides now.
    func cut() {
        client.close()
        backend.close()
        closed(.client)
    }

    /// One side closed: close the other once what was written to it is flushed.
    func closed(_ side: Side) {
        other(side).flush()
        other(side).close()
        guard !finished else { return }
        finished = true
        onClose?()
        onClose = nil
    }
}
