import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections from one event loop to one backend. Everything here runs on that
/// event loop, so the request path takes no lock; a client connection always borrows from the
/// pool of its own loop.
final class BackendConnectionPool: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let host: String
    private let port: Int
    private let connectTimeout: Duration
    private let maxIdle: Int
    private let maxOpen: Int
    private let idleTimeout: TimeAmount
    private var idle: [(connection: ProxyBackendHandler, since: NIODeadline)] = []
    private var open: [ObjectIdentifier: ProxyBackendHandler] = [:]
    private var connecting = 0
    /// What this loop's clients were served by the backend (summed by `Backend.stats()`).
    var stats = BackendStats()
    /// Borrowers waiting because `maxOpen` connections are open; served as connections come
    /// back. A `fresh` one (a WebSocket handshake) is never handed a used connection.
    private var waiters = CircularBuffer<(promise: EventLoopPromise<ProxyBackendHandler>, fresh: Bool)>()

    init(eventLoop: any EventLoop, host: String, port: Int, configuration: ProxyConfiguration) {
        self.eventLoop = eventLoop
        self.host = host
        self.port = port
        self.connectTimeout = configuration.connectTimeout
        self.maxIdle = configuration.maxIdleConnectionsPerBackend
        self.maxOpen = configuration.maxConnectionsPerBackend
        self.idleTimeout = TimeAmount(configuration.backendIdleTimeout)
    }

    /// An idle connection that is still open and has not been idle so long that the backend may
    /// be closing it right now (its own keep-alive timeout); older ones are closed.
    func takeIdle() -> ProxyBackendHandler? {
        eventLoop.preconditionInEventLoop()
        let now = NIODeadline.now()
        while let (connection, since) = idle.popLast() {
            if connection.isOpen && now - since < idleTimeout { return connection }
            connection.close()
        }
        return nil
    }

    /// A new connection, or, at the limit of open connections, the next one given back (failing
    /// with `ConnectionLimitReached` after the connect timeout). A `fresh` borrower never gets a
    /// used connection: at the limit an idle one is closed to make room, else it waits for a
    /// place.
    func connect(fresh: Bool = false) -> EventLoopFuture<ProxyBackendHandler> {
        eventLoop.preconditionInEventLoop()
        guard open.count + connecting >= maxOpen else { return openConnection() }
        if fresh, let (spare, _) = idle.popLast() {
            retire(spare)
            return openConnection()
        }
        let promise = eventLoop.makePromise(of: ProxyBackendHandler.self)
        waiters.append((promise, fresh))
        eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(connectTimeout)) { [self] in
            if let index = waiters.firstIndex(where: { $0.promise.futureResult === promise.futureResult }) {
                waiters.remove(at: index).promise.fail(ConnectionLimitReached())
            }
        }
        return promise.futureResult
    }

    /// Closes a connection and frees its place at once (its `forget` then finds nothing to do).
    private func retire(_ connection: ProxyBackendHandler) {
        open.removeValue(forKey: ObjectIdentifier(connection))
        connection.close()
    }

    private func openConnection() -> EventLoopFuture<ProxyBackendHandler> {
        let pool = self
        connecting += 1
        // ClientBootstrap sets TCP_NODELAY itself.
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Framing headers are written by the proxy itself (HeadRewriter), never guessed
                    // by the encoder; 1xx responses are passed on; after a 101 the decoder hands the
                    // bytes it buffered to the tunnel.
                    var encoder = HTTPRequestEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTPRequestEncoder(configuration: encoder))
                    try sync.addHandler(
                        ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward))
                    )
                    try sync.addHandler(ProxyBackendHandler(pool: pool))
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ProxyBackendHandler.self)
                pool.open[ObjectIdentifier(handler)] = handler
                return handler
            }
            .always { result in
                pool.connecting -= 1
                // A failed connect frees its place too: the next waiter tries its own.
                if case .failure = result, let waiter = pool.waiters.popFirst() { pool.openConnection().cascade(to: waiter.promise) }
            }
    }

    /// Returns a connection after a response. Only a connection whose exchange completed cleanly
    /// goes back; the backend's own `Connection: close` or a non-routable backend closes it.
    func release(_ connection: ProxyBackendHandler, reusable: Bool, backendRoutable: Bool) {
        eventLoop.preconditionInEventLoop()
        guard reusable && backendRoutable && connection.isOpen else {
            connection.close()
            return
        }
        if let waiter = waiters.popFirst() {
            guard waiter.fresh else { return waiter.promise.succeed(connection) }
            retire(connection)
            openConnection().cascade(to: waiter.promise)
        } else if idle.count < maxIdle {
            idle.append((connection, .now()))
        } else {
            connection.close()
        }
    }

    /// Called by a connection's handler when its channel closes or it leaves for a tunnel.
    func forget(_ connection: ProxyBackendHandler) {
        idle.removeAll { $0.connection === connection }
        guard open.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        // A place opened up: the longest waiter gets a new connection.
        if let waiter = waiters.popFirst() { openConnection().cascade(to: waiter.promise) }
    }

    func closeIdle() {
        let closing = idle
        idle.removeAll()
        for (connection, _) in closing { connection.close() }
    }

    func closeAll() {
        idle.removeAll()
        for connection in open.values { connection.cut() }
    }

    /// Whether a failed connect says something about the backend, rather than about this
    /// machine (out of file descriptors or ports, or our own connection limit): only the
    /// former may take a backend out of rotation.
    static func isBackendFault(_ error: any Error) -> Bool {
        if error is ConnectionLimitReached { return false }
        let local: Set<CInt> = [EMFILE, ENFILE, EADDRNOTAVAIL, ENOBUFS, ENOMEM]
        var codes: [CInt] = []
        if let error = error as? IOError { codes = [error.errnoCode] }
        if let error = error as? NIOConnectionError {
            codes = error.connectionErrors.compactMap { ($0.error as? IOError)?.errnoCode }
        }
        return !codes.contains(where: local.contains)
    }
}

/// `--max-connections-per-backend` connections were busy for the whole connect timeout.
struct ConnectionLimitReached: Error {}
