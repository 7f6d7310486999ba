import BatonCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A bare TCP connection for sending bytes that a well-behaved client never would (bad
/// framing, slow headers) and seeing exactly what comes back.
public final class RawConnection: Sendable {
    struct Received {
        var bytes: [UInt8] = []
        var closed = false
        /// Callers of `waitForMore`, woken by every read and by the close.
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0

        mutating func wakeAll() -> [CheckedContinuation<Void, Never>] {
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
    }

    private let channel: any Channel
    private let received: NIOLockedValueBox<Received>

    /// - Parameter reading: false for a client that never reads what it is sent (the kernel's
    ///   buffers fill, then the server's writes stall).
    public static func connect(to endpoint: Endpoint, reading: Bool = true) async throws -> RawConnection {
        guard case .tcp(let host, let port) = endpoint else { throw BatonError(.invalidArgument, "RawConnection needs TCP") }
        let received = NIOLockedValueBox(Received())
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if !reading {
            bootstrap = bootstrap.channelOption(.autoRead, value: false).channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(received: received))
                }
            }
            .connect(host: host, port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    private init(channel: any Channel, received: NIOLockedValueBox<Received>) {
        self.channel = channel
        self.received = received
    }

    public func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    public func send(bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    public var bytes: [UInt8] { received.withLockedValue { $0.bytes } }
    public var text: String { String(decoding: received.withLockedValue { $0.bytes }, as: UTF8.self) }
    public var closedByPeer: Bool { received.withLockedValue { $0.closed } }

    /// Returns once more than `count` bytes have arrived in all, the peer closed, or `timeout`
    /// passed, without polling.
    public func waitForMore(than count: Int, timeout: Duration) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id: UInt64? = received.withLockedValue { state in
                if state.bytes.count > count || state.closed { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = continuation
                return state.nextWaiter
            }
            guard let id else { return continuation.resume() }
            Task { [received] in
                try? await Task.sleep(for: timeout)
                received.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }

    /// Reads what arrived so far without copying it (a long-lived connection's bytes add up).
    public func withReceived<Result>(_ body: (_ bytes: [UInt8], _ closed: Bool) -> Result) -> Result {
        received.withLockedValue { body($0.bytes, $0.closed) }
    }

    /// Waits until the peer closes or `timeout` passes; returns everything received.
    @discardableResult
    public func waitForClose(timeout: Duration) async -> String {
        let start = ContinuousClock.now
        while !closedByPeer && ContinuousClock.now - start < timeout {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return text
    }

    public func close() async {
        try? await channel.close()
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<Received>
        init(received: NIOLockedValueBox<Received>) { self.received = received }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let woken = received.withLockedValue { state in
                state.bytes += buffer.readableBytesView
                return state.wakeAll()
            }
            for waiter in woken { waiter.resume() }
        }
        func channelInactive(context: ChannelHandlerContext) {
            let woken = received.withLockedValue { state in
                state.closed = true
                return state.wakeAll()
            }
            for waiter in woken { waiter.resume() }
        }
    }
}
