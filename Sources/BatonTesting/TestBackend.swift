import BatonCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP backend for tests, in-process on 127.0.0.1. Routes:
///
///     GET  /up                 200, or 503 after `setHealthy(false)`
///     ANY  /hang               never answers
///     ANY  /upload             reads and counts the body: "received N"
///     GET  /download?bytes=N   streams N bytes, chunked, with backpressure
///     GET  /events?count=N&interval=MS   server-sent events "id: i / data: event i"
///     ANY  /echo               the request as JSON: method, uri, headers, body length, trailers
///     ANY  anything else       "hello from NAME"; `?sleep=MS` waits first
///
/// `Expect: 100-continue` is answered with a 100 before the body is read.
/// Every response carries `X-Served-By: NAME`. `kill()` closes the listener and resets every
/// open connection, as a crashed server would.
public final class TestBackend: Sendable {
    public let name: String
    public let port: Int
    private let server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let healthy = Atomic<Bool>(true)
    private let served = Atomic<Int>(0)
    private let serving = NIOLockedValueBox<Task<Void, Never>?>(nil)

    public var endpoint: Endpoint { .tcp(host: "127.0.0.1", port: port) }
    public var address: String { endpoint.description }
    /// Connections open to it right now.
    public var openConnections: Int { connections.withLockedValue { $0.count } }
    /// Responses begun (health checks excluded).
    public var requestsServed: Int { served.load(ordering: .relaxed) }

    /// - Parameter keepAliveTimeout: closes a connection idle this long, as gunicorn (2 s) and
    ///   Node (5 s) do; nil keeps connections open.
    public static func start(name: String, port: Int = 0, keepAliveTimeout: Duration? = nil) async throws -> TestBackend {
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = ObjectIdentifier(channel)
                    connections.withLockedValue { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                    if let keepAliveTimeout {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: TimeAmount(keepAliveTimeout)))
                        try channel.pipeline.syncOperations.addHandler(CloseWhenIdle())
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    // Closed on deinit: a connection accepted as kill() closes the listener may
                    // never reach the accept loop, and NIO traps when such a channel made with
                    // the non-deprecated initialiser is dropped.
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(synchronouslyWrapping: channel)
                }
            }
        let backend = TestBackend(name: name, server: server, connections: connections)
        backend.serving.withLockedValue { $0 = Task { await backend.acceptLoop() } }
        return backend
    }

    private init(
        name: String,
        server: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    ) {
        self.name = name
        self.server = server
        self.port = server.channel.localAddress?.port ?? 0
        self.connections = connections
    }

    public func setHealthy(_ value: Bool) { healthy.store(value, ordering: .relaxed) }

    /// Closes the listener and resets every connection (SO_LINGER 0), like a killed process.
    public func kill() async {
        try? await server.channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for channel in open {
            try? await (channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
            try? await channel.close()
        }
        await stopServing()
    }

    /// Closes the listener and every connection politely.
    public func stop() async {
        try? await server.channel.close()
        for channel in connections.withLockedValue({ Array($0.values) }) { try? await channel.close() }
        await stopServing()
    }

    /// The listener is closed already: the accept loop ends by itself once its stream has
    /// handed over every connection accepted before and they have closed. Cancelling it would
    /// drop connections not yet served, and NIO traps on a dropped NIOAsyncChannel in debug
    /// builds. So a connection accepted just as the listener closed (registered after the caller
    /// closed the others) is closed here too, until the loop ends; cancelling is a last resort.
    private func stopServing() async {
        let task = serving.withLockedValue { $0 }
        let watchdog = Task {
            for _ in 0..<100 {
                try? await Task.sleep(for: .milliseconds(100))
                if Task.isCancelled { return }
                for channel in connections.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
            }
            task?.cancel()
        }
        await task?.value
        watchdog.cancel()
    }

    private func acceptLoop() async {
        await withDiscardingTaskGroup { group in
            try? await server.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.serve(connection) }
                }
            }
            group.cancelAll()
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var bodyBytes = 0
            for try await part in inbound {
                switch part {
                case .head(let h):
                    head = h
                    bodyBytes = 0
                    // As servers do: say "go on" to a client that waits before sending its body.
                    if h.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .continue)))
                    }
                case .body(let buffer):
                    bodyBytes += buffer.readableBytes
                case .end(let trailers):
                    guard let head else { continue }
                    try await respond(to: head, bodyBytes: bodyBytes, trailers: trailers, outbound: outbound)
                }
            }
        }
    }

    private func respond(
        to head: HTTPRequestHead,
        bodyBytes: Int,
        trailers: HTTPHeaders? = nil,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        let target = RequestTarget(head.uri)
        let (path, query) = (target.path, target.query)
        if path == "/up" {
            let ok = healthy.load(ordering: .relaxed)
            try await send(ok ? .ok : .serviceUnavailable, ok ? "ok\n" : "unhealthy\n", outbound: outbound)
            return
        }
        served.wrappingAdd(1, ordering: .relaxed)
        if let sleep = query["sleep"].flatMap(Int.init) { try await Task.sleep(for: .milliseconds(sleep)) }
        switch path {
        case "/hang":
            try await Task.sleep(for: .seconds(3600))
        case "/upload":
            try await send(.ok, "received \(bodyBytes)\n", outbound: outbound)
        case "/download":
            let total = query["bytes"].flatMap(Int.init) ?? 0
            var headers = HTTPHeaders([("x-served-by", name)])
            headers.add(name: "transfer-encoding", value: "chunked")
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
            let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            var remaining = total
            while remaining > 0 {
                let size = min(remaining, chunk.readableBytes)
                try await outbound.write(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!)))
                remaining -= size
            }
            try await outbound.write(.end(nil))
        case "/events":
            // Server-sent events, each written in two pieces so an event spans reads.
            let count = query["count"].flatMap(Int.init) ?? 10
            let interval = query["interval"].flatMap(Int.init) ?? 20
            let headers = HTTPHeaders([("x-served-by", name), ("content-type", "text/event-stream"), ("transfer-encoding", "chunked")])
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
            for index in 0..<count {
                try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "id: \(index)\ndata: ev"))))
                try await Task.sleep(for: .milliseconds(interval / 2))
                try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "ent \(index)\n\n"))))
                try await Task.sleep(for: .milliseconds(interval - interval / 2))
            }
            try await outbound.write(.end(nil))
        case "/echo":
            let echo: [String: String] = Dictionary(
                head.headers.map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { "\($0), \($1)" }
            ).merging(["method": head.method.rawValue, "uri": head.uri, "body-bytes": String(bodyBytes)]) { $1 }
                .merging((trailers ?? [:]).map { ("trailer-" + $0.name.lowercased(), $0.value) }) { $1 }
            let data = try JSONSerialization.data(withJSONObject: echo, options: [.sortedKeys])
            try await send(.ok, String(decoding: data, as: UTF8.self), outbound: outbound)
        default:
            try await send(.ok, "hello from \(name)\n", outbound: outbound)
        }
    }

    private func send(
        _ status: HTTPResponseStatus,
        _ body: String,
        outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        let buffer = ByteBuffer(string: body)
        let headers = HTTPHeaders([("x-served-by", name), ("content-length", String(buffer.readableBytes))])
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(buffer)))
        try await outbound.write(.end(nil))
    }
}

/// Closes the connection on the idle event (a backend's keep-alive timeout).
private final class CloseWhenIdle: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
