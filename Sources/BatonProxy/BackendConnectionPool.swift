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
    private var idle: [ProxyBackendHandler] = []
    private var open: [ObjectIdentifier: ProxyBackendHandler] = [:]

    init(eventLoop: any EventLoop, host: String, port: Int, connectTimeout: Duration, maxIdle: Int) {
        self.eventLoop = eventLoop
        self.host = host
        self.port = port
        self.connectTimeout = connectTimeout
        self.maxIdle = maxIdle
    }

    /// An idle connection that is still open, if there is one.
    func takeIdle() -> ProxyBackendHandler? {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.isOpen { return connection }
        }
        return nil
    }

    func connect() -> EventLoopFuture<ProxyBackendHandler> {
        let pool = self
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(connectTimeout.milliseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .dropBytes,
                        enableOutboundHeaderValidation: false
                    )
                    try channel.pipeline.syncOperations.addHandler(ProxyBackendHandler(pool: pool))
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: ProxyBackendHandler.self)
                pool.open[ObjectIdentifier(handler)] = handler
                return handler
            }
    }

    /// Returns a connection after a response. Only a connection whose exchange completed cleanly
    /// goes back; the backend's own `Connection: close` or a non-routable backend closes it.
    func release(_ connection: ProxyBackendHandler, reusable: Bool, backendRoutable: Bool) {
        eventLoop.preconditionInEventLoop()
        if reusable && backendRoutable && connection.isOpen && idle.count < maxIdle {
            idle.append(connection)
        } else {
            connection.close()
        }
    }

    /// Called by a connection's handler when its channel closes.
    func connectionClosed(_ connection: ProxyBackendHandler) {
        open[ObjectIdentifier(connection)] = nil
        idle.removeAll { $0 === connection }
    }

    func closeIdle() {
        let closing = idle
        idle.removeAll()
        for connection in closing { connection.close() }
    }

    func closeAll() {
        idle.removeAll()
        for connection in open.values { connection.cut() }
    }
}
