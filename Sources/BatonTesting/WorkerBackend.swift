import BatonCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An app server with a fixed number of workers, as gunicorn's sync workers are: a request
/// holds a worker from its head until its handler returns, which may be well after the
/// response's last byte (a streaming handler's teardown, work after the response); every
/// response says `Connection: close` and the connection closes when the handler returns. A
/// request that arrives while every worker is busy waits for one, and is counted in
/// `waitedForWorker`: the number tests assert on, rather than latency.
///
///     GET /stream?ms=M&linger=L   10 bytes over M ms (Content-Length 10); the handler returns L ms
///                                 after the last byte
///     GET /up                     200 (503 after `setHealthy(false)`) without taking a worker
///     GET anything else           "ok", the handler returns at once
public final class WorkerBackend: Sendable {
    public let name: String
    public let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let counters: Counters

    public var endpoint: Endpoint { .tcp(host: "127.0.0.1", port: port) }
    public var address: String { endpoint.description }
    /// Requests that could not start at once when they arrived.
    public var waitedForWorker: Int { counters.waited.load(ordering: .relaxed) }
    /// Requests served (health checks excluded).
    public var requestsServed: Int { counters.served.load(ordering: .relaxed) }

    public func setHealthy(_ value: Bool) { counters.healthy.store(value, ordering: .relaxed) }

    public static func start(name: String, workers: Int, port: Int = 0) async throws -> WorkerBackend {
        // One thread: the workers' bookkeeping needs no lock.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counters = Counters()
        let loop = group.next()
        let workerPool = try await loop.submit { NIOLoopBound(WorkerPool(workers: workers), eventLoop: loop) }.get()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                    try channel.pipeline.syncOperations.addHandler(
                        WorkerConnection(workers: workerPool.value, counters: counters)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        return WorkerBackend(name: name, port: channel.localAddress?.port ?? 0, group: group, channel: channel, counters: counters)
    }

    private init(name: String, port: Int, group: MultiThreadedEventLoopGroup, channel: any Channel, counters: Counters) {
        self.name = name
        self.port = port
        self.group = group
        self.channel = channel
        self.counters = counters
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }

    final class Counters: Sendable {
        let waited = Atomic<Int>(0)
        let served = Atomic<Int>(0)
        let healthy = Atomic<Bool>(true)
    }
}

/// The workers: a request runs when one is free, else waits for one in arrival order.
private final class WorkerPool {
    private let workers: Int
    private var busy = 0
    private var waiting = CircularBuffer<() -> Void>()

    init(workers: Int) { self.workers = workers }

    var hasFreeWorker: Bool { busy < workers }

    func acquire(_ run: @escaping () -> Void) {
        if busy < workers {
            busy += 1
            run()
        } else {
            waiting.append(run)
        }
    }

    func release() {
        if let next = waiting.popFirst() {
            next()
        } else {
            busy -= 1
        }
    }
}

/// One client connection: one request, run by a worker; the connection closes when its handler
/// returns.
private final class WorkerConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let workers: WorkerPool
    private let counters: WorkerBackend.Counters
    private var head: HTTPRequestHead?
    private var started = false

    init(workers: WorkerPool, counters: WorkerBackend.Counters) {
        self.workers = workers
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head, !started else { return }
            self.head = nil
            if head.uri == "/up" {
                let healthy = counters.healthy.load(ordering: .relaxed)
                respond(context: context, status: healthy ? .ok : .serviceUnavailable, body: healthy ? "up" : "down")
                return
            }
            started = true
            if !workers.hasFreeWorker { counters.waited.add(1, ordering: .relaxed) }
            run(head, context: context)
        }
    }

    private func run(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        workers.acquire { [self] in
            counters.served.add(1, ordering: .relaxed)
            let target = RequestTarget(head.uri)
            guard target.path == "/stream" else {
                respond(context: context, body: "ok")
                return handlerReturned(context: context)
            }
            let streamMs = Int64(target.query["ms"] ?? "") ?? 100
            let lingerMs = Int64(target.query["linger"] ?? "") ?? 0
            let headers = HTTPHeaders([("content-length", "10"), ("connection", "close")])
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            for index in 0..<10 {
                loop.scheduleTask(in: .milliseconds(streamMs * Int64(index + 1) / 10)) { [self] in
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "*")))), promise: nil)
                    if index == 9 {
                        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                        loop.scheduleTask(in: .milliseconds(lingerMs)) { [self] in handlerReturned(context: context) }
                    } else {
                        context.flush()
                    }
                }
            }
        }
    }

    private func handlerReturned(context: ChannelHandlerContext) {
        workers.release()
        context.close(promise: nil)
    }

    /// A whole response; `/up` keeps the connection open, a handler's answer closes it.
    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus = .ok, body: String) {
        var headers = HTTPHeaders([("content-length", String(body.utf8.count))])
        if started { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
