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

    /// Binds the listener and returns it with the address it got, for `serve`.
    func bind(_ endpoint: Endpoint) async throws -> (NIOAsyncChannel<Connection, Never>, SocketAddress?) {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // A deploy script may fire many calls at once; a full accept queue makes a Unix
            // socket connect fail at once (EAGAIN) rather than wait, so leave room for bursts.
            .serverChannelOption(.backlog, value: 1024)
        let open = self.openConnections
        let requestTimeout = self.requestTimeout
        let isTCP: Bool
        if case .tcp = endpoint { isTCP = true } else { isTCP = false }
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
        let server: NIOAsyncChannel<Connection, Never>
        switch endpoint {
        case .tcp(let host, let port):
            server = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        case .unix(let path):
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            chmod(path, 0o600)
        }
        return (server, server.channel.localAddress)
    }

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
                let response: AdminAPI.Response
                let refused = token.map { !Self.constantTimeEqual(request.head.headers.first(name: "authorization") ?? "", "Bearer \($0)") } ?? false
                if refused {
                    response = .error(.unauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN")
                } else {
                    response = await api.handle(method: request.head.method, uri: request.head.uri, body: request.body)
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
    func increment() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
    func decrement() { value.wrappingSubtract(1, ordering: .relaxed) }
}
