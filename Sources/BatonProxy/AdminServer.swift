import BatonCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Serves `AdminAPI` on a Unix socket (mode 0600, so only its owner may call it) and, when a
/// token is configured, on TCP, where every call must carry `Authorization: Bearer TOKEN`.
struct AdminServer: Sendable {
    typealias Connection = NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>

    let api: AdminAPI
    let group: any EventLoopGroup
    let logger: Logger
    private let openConnections = AtomicCounter()
    private let busy = AtomicCounter()

    /// TCP admin connections open at once (the Unix socket is only its owner's).
    static let maxConnections = 64
    /// How long a connection has to send its next whole request (AdminRequestDeadlineHandler).
    let requestTimeout: TimeAmount

    init(api: AdminAPI, group: any EventLoopGroup, logger: Logger, requestTimeout: Duration) {
        self.api = api
        self.group = group
        self.logger = logger
        self.requestTimeout = TimeAmount(requestTimeout)
    }

    /// Serves on `descriptor`, a listening socket (`ListeningSocket`, backlog 1024: a deploy
    /// script may fire many calls at once, and a full accept queue makes a Unix socket connect
    /// fail at once rather than wait); returns the listener with its address, for `serve`.
    func bind(descriptor: CInt, isTCP: Bool) async throws -> (NIOAsyncChannel<Connection, Never>, SocketAddress?) {
        let bootstrap = ServerBootstrap(group: group)
        let open = self.openConnections
        let requestTimeout = self.requestTimeout
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
            // A bounded number of admin connections; each must send a whole request within the
            // request timeout of connecting or of its last response (no slowloris on the admin API).
            if isTCP && open.increment() > Self.maxConnections {
                open.decrement()
                return channel.close().flatMapThrowing { throw ChannelError.ioOnClosedChannel }
            }
            if isTCP { channel.closeFuture.whenComplete { _ in open.decrement() } }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(NIOHTTPServerRequestAggregator(maxContentLength: 1 << 20))
                try channel.pipeline.syncOperations.addHandler(AdminRequestDeadlineHandler(timeout: requestTimeout))
                // Closed on deinit: a connection accepted just as the listener closes is never handed to
                // the accept loop, and NIO traps (also in release builds) when such a channel is
                // dropped with the non-deprecated initialiser.
                return try Connection(synchronouslyWrapping: channel)
            }
        }
        let server = try await bootstrap.bind(descriptor, childChannelInitializer: initializer)
        return (server, server.channel.localAddress)
    }

    /// Whether a call is being answered, so a stopping proxy finishes it first (the call that
    /// upgraded it, above all).
    var isBusy: Bool { busy.count > 0 }

    /// Accepts and serves connections until cancelled.
    func serve(_ server: NIOAsyncChannel<Connection, Never>, token: String?) async {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await serveConnection(connection, token: token) }
                    }
                }
            }
        } catch is CancellationError {
        } catch {
            logger.error("admin API listener failed: \(error)")
        }
    }

    /// Compares without stopping at the first difference, so the time taken says nothing of
    /// how much of a guessed token was right.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }

    private func serveConnection(_ connection: Connection, token: String?) async {
        try? await connection.executeThenClose { inbound, outbound in
            for try await request in inbound {
                busy.increment()
                defer { busy.decrement() }
                let response: AdminAPI.Response
                let refused = token.map { !Self.constantTimeEqual(request.head.headers.first(name: "authorization") ?? "", "Bearer \($0)") } ?? false
                if refused {
                    response = .error(.unauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN")
                } else {
                    response = await api.handle(method: request.head.method, uri: request.head.uri, body: request.body, overTCP: token != nil)
                }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: response.contentType)
                headers.add(name: "content-length", value: String(response.body.readableBytes))
                try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
                try await outbound.write(.body(.byteBuffer(response.body)))
                try await outbound.write(.end(nil))
                // A caller without the token gets one answer per connection, so guessing costs
                // a connection each time and holds no slot.
                if refused { return }
            }
        }
    }
}

/// A shared counter for a `Sendable` struct.
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    /// Adds one and returns the new count.
    @discardableResult
    func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    var count: Int { value.load(ordering: .relaxed) }
    func decrement() { value.wrappingSubtract(1, ordering: .relaxed) }
}

/// A shared flag for closures that outlive their owner's borrow.
final class AtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set(_ on: Bool) { value.store(on, ordering: .relaxed) }
}
