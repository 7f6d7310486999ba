import BatonCore
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// `baton proxy`: the listener, the backend pool, health checks and the admin API, run as one
/// `Service`. On graceful shutdown it stops accepting, lets in-flight requests finish, and exits.
public final class ProxyServer: Service, Sendable {
    /// Where the proxy ended up listening (ports chosen by the system when 0 was asked).
    public struct Addresses: Sendable {
        public var proxy: SocketAddress
        public var tls: SocketAddress?
        public var redirect: SocketAddress?
        public var admin: SocketAddress?
        public var adminTCP: SocketAddress?
    }

    public let configuration: ProxyConfiguration
    public let pool: BackendPool
    public let metrics: ProxyMetrics
    /// What the TLS listener serves (nil without `--tls-listen`); `reload()` renews it.
    public let certificates: TLSCertificates?
    /// Previous releases' assets (nil without `--asset-prefix`).
    public let assets: AssetCache?
    private let accessLog: AccessLog
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let store: BackendStore?
    private let running: EventLoopPromise<Addresses>
    /// Client connections open now, for `--max-connections` and the shutdown report.
    private let openConnections = Atomic<Int>(0)

    public init(configuration: ProxyConfiguration, logger: Logger = Logger(label: "baton.proxy")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        self.metrics = ProxyMetrics()
        self.accessLog = try AccessLog(path: configuration.accessLog, logger: logger)
        self.certificates = configuration.tlsListen == nil ? nil : try TLSCertificates(files: configuration.tlsCertificates)
        if let prefix = configuration.assetPrefix, let manifest = configuration.assetManifest {
            self.assets = AssetCache(prefix: prefix, manifest: manifest, limit: configuration.assetCacheLimit, logger: logger)
        } else {
            self.assets = nil
        }
        let store = configuration.stateFile.map(BackendStore.init(path:))
        self.store = store
        self.pool = BackendPool(group: group, configuration: configuration, metrics: metrics, logger: logger) { backends, sequence in
            do {
                try store?.save(backends, sequence: sequence)
            } catch {
                logger.error("could not save the backend list: \(error)")
            }
        }
        self.running = group.any().makePromise(of: Addresses.self)
    }

    /// Returns once the proxy listens, with its addresses; throws if it could not start.
    public func waitUntilRunning() async throws -> Addresses {
        try await running.futureResult.get()
    }

    public func run() async throws {
        do {
            try await serve()
            try? await group.shutdownGracefully()
        } catch {
            running.fail(error)
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func serve() async throws {
        for saved in try store?.load() ?? [] {
            try pool.add(name: saved.name, address: try Endpoint(parsing: saved.address), restoredAs: saved)
        }

        let quiesce = ServerQuiescingHelper(group: group)
        let server = try await bindProxy(configuration.listen, tls: nil, quiesce: quiesce)
        var tlsServer: (any Channel)?
        if let endpoint = configuration.tlsListen, let certificates {
            tlsServer = try await bindProxy(endpoint, tls: certificates, quiesce: quiesce)
        }
        var redirectServer: (any Channel)?
        if let endpoint = configuration.redirectListen, let httpsPort = tlsServer?.localAddress?.port {
            redirectServer = try await bindRedirect(endpoint, httpsPort: httpsPort, quiesce: quiesce)
        }
        let api = AdminAPI(pool: pool, metrics: metrics, configuration: configuration, certificates: certificates)
        let admin = AdminServer(api: api, group: group, logger: logger, requestTimeout: configuration.adminRequestTimeout)
        var unixAdmin: (NIOAsyncChannel<AdminServer.Connection, Never>, SocketAddress?)?
        if let path = configuration.adminSocket { unixAdmin = try await admin.bind(.unix(path: path)) }
        var tcpAdmin: (NIOAsyncChannel<AdminServer.Connection, Never>, SocketAddress?)?
        if let endpoint = configuration.adminListen { tcpAdmin = try await admin.bind(endpoint) }

        guard let proxyAddress = server.localAddress else { throw BatonError(.io, "the proxy listener has no address") }
        let addresses = Addresses(proxy: proxyAddress, tls: tlsServer?.localAddress, redirect: redirectServer?.localAddress, admin: unixAdmin?.1, adminTCP: tcpAdmin?.1)
        logger.info("proxy listening", metadata: [
            "address": "\(proxyAddress)",
            "tls": "\(addresses.tls.map { "\($0)" } ?? "-")",
            "redirect": "\(addresses.redirect.map { "\($0)" } ?? "-")",
            "admin": "\(configuration.adminSocket ?? "-")",
            "admin_tcp": "\(tcpAdmin?.1.map { "\($0)" } ?? "-")",
        ])
        running.succeed(addresses)

        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask { await HealthChecker(pool: self.pool, group: self.group).run() }
            if let assets { tasks.addTask { await assets.run(pool: self.pool) } }
            if let unixAdmin { tasks.addTask { await admin.serve(unixAdmin.0, token: nil) } }
            if let tcpAdmin { tasks.addTask { await admin.serve(tcpAdmin.0, token: self.configuration.adminToken) } }

            // Run until asked to stop (SIGTERM through the ServiceGroup, or task cancellation).
            try? await gracefulShutdown()
            logger.info("shutting down: no new connections; finishing in-flight requests")
            let closed = group.any().makePromise(of: Void.self)
            quiesce.initiateShutdown(promise: closed)
            // Whichever comes first: every connection done, or the shutdown timeout.
            let outcome = group.any().makePromise(of: Bool.self)
            closed.futureResult.whenComplete { _ in outcome.succeed(true) }
            let deadline = group.any().scheduleTask(in: TimeAmount(configuration.shutdownTimeout)) { outcome.succeed(false) }
            if try await outcome.futureResult.get() == false {
                // What is still open at the deadline is cut when the event loops shut down.
                logger.warning("shutdown timeout: cutting connections still busy", metadata: [
                    "timeout": "\(configuration.shutdownTimeout.shortDescription)",
                    "cut": "\(openConnections.load(ordering: .relaxed))",
                ])
            }
            deadline.cancel()
            tasks.cancelAll()
        }
        if let path = configuration.adminSocket { unlink(path) }
        logger.info("proxy stopped")
    }

    /// Reads the TLS certificate files again (SIGHUP, `POST /tls/reload`); on error the ones in
    /// use stay and the error is thrown.
    public func reloadCertificates() throws {
        guard let certificates else { throw BatonError(.invalidArgument, "no --tls-listen: there are no certificates to reload") }
        try certificates.reload()
        logger.info("TLS certificates reloaded", metadata: ["names": "\(certificates.summary.flatMap(\.names).joined(separator: ","))"])
    }

    private func bindProxy(_ endpoint: Endpoint, tls: TLSCertificates?, quiesce: ServerQuiescingHelper) async throws -> any Channel {
        let pool = self.pool
        let configuration = self.configuration
        let metrics = self.metrics
        let logger = self.logger
        let accessLog = self.accessLog
        let assets = self.assets
        let wheels = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), TimerWheel(eventLoop: $0)) })
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { [self] channel in
                if openConnections.wrappingAdd(1, ordering: .relaxed).newValue > configuration.maxConnections {
                    openConnections.wrappingSubtract(1, ordering: .relaxed)
                    logger.warning("connection refused: --max-connections reached", metadata: ["limit": "\(configuration.maxConnections)"])
                    return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(CloseWhenActive()) }
                }
                channel.closeFuture.whenComplete { [self] _ in openConnections.wrappingSubtract(1, ordering: .relaxed) }
                return channel.eventLoop.makeCompletedFuture {
                    // Set here rather than as a child channel option, which NIO applies through a
                    // chain of futures on every accept. (TCP_NODELAY comes from the listener, which
                    // ServerBootstrap sets it on: accepted sockets inherit it.)
                    try channel.syncOptions?.setOption(.maxMessagesPerRead, value: 16)
                    let sync = channel.pipeline.syncOperations
                    if let tls { try sync.addHandler(NIOSSLServerHandler(context: tls.context)) }
                    let wheel = wheels[ObjectIdentifier(channel.eventLoop)]!
                    let timeouts = HeaderTimeoutHandler(headerTimeout: configuration.headerTimeout, idleTimeout: configuration.idleTimeout, wheel: wheel)
                    try sync.addHandler(timeouts)
                    // Framing headers are written by the proxy (HeadRewriter), never guessed by the
                    // encoder; no outbound header validation: response headers come from the
                    // backend's decoder (which rejects CR/LF) or from us.
                    var encoder = HTTPResponseEncoder.Configuration()
                    encoder.automaticallySetFramingHeaders = false
                    try sync.addHandler(HTTPResponseEncoder(configuration: encoder))
                    // When removed after a WebSocket handshake, it hands the bytes it holds to the tunnel.
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
                    try sync.addHandler(ProxyFrontendHandler(pool: pool, configuration: configuration, metrics: metrics, accessLog: accessLog, connectionTimeouts: timeouts, wheel: wheel, assets: assets, secure: tls != nil))
                }
            }
        return try await Self.bind(bootstrap, to: endpoint)
    }

    /// The `--redirect-listen` listener: every request gets a 308 to the same path on HTTPS.
    private func bindRedirect(_ endpoint: Endpoint, httpsPort: Int, quiesce: ServerQuiescingHelper) async throws -> any Channel {
        let headerTimeout = configuration.headerTimeout
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: TimeAmount(headerTimeout)))
                    try sync.addHandler(HTTPResponseEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try sync.addHandler(HTTPSRedirectHandler(httpsPort: httpsPort))
                }
            }
        return try await Self.bind(bootstrap, to: endpoint)
    }

    private static func bind(_ bootstrap: ServerBootstrap, to endpoint: Endpoint) async throws -> any Channel {
        do {
            switch endpoint {
            case .tcp(let host, let port):
                return try await bootstrap.bind(host: host, port: port).get()
            case .unix(let path):
                return try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            }
        } catch {
            throw BatonError(.io, "cannot listen on \(endpoint)", underlying: error)
        }
    }
}

/// Closes a connection accepted over `--max-connections` as soon as it is active.
private final class CloseWhenActive: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { context.close(promise: nil) }
    }

    func channelActive(context: ChannelHandlerContext) {
        context.close(promise: nil)
    }
}
