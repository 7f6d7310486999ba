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
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    private let store: BackendStore?
    /// The listening descriptors by role, for a handover: the proxy listeners' are the ones NIO
    /// serves; the admin ones are spares (`dup`), since the admin listeners close first.
    let descriptors = Mutex<[Handover.Role: CInt]>([:])
    /// Admin listeners to serve; a failed upgrade puts them back through here.
    let adminListeners: AsyncStream<AdminListener>
    let adminListenerQueue: AsyncStream<AdminListener>.Continuation
    let adminChannels = Mutex<[any Channel]>([])
    let adminServer = Mutex<AdminServer?>(nil)
    /// Ends `serve` as SIGTERM does, once a new process took over.
    let stops: AsyncStream<Void>
    let stop: AsyncStream<Void>.Continuation
    /// Set while another process holds the pool (the one taking over from this one, or the
    /// one this one takes over from until it stopped accepting): this one does not save it.
    let handedOver = AtomicFlag()
    /// The proxy listeners NIO serves, which an upgrade pauses.
    let proxyListeners = Mutex<[any Channel]>([])
    /// An upgrade starts only from `serving`, one at a time, and never once stopping.
    enum Lifecycle { case serving, upgrading, stopping }
    let lifecycle = Mutex(Lifecycle.serving)

    struct AdminListener: Sendable {
        var channel: NIOAsyncChannel<AdminServer.Connection, Never>
        var token: String?
    }
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
        (adminListeners, adminListenerQueue) = AsyncStream.makeStream(of: AdminListener.self)
        (stops, stop) = AsyncStream.makeStream(of: Void.self)
        let handedOver = self.handedOver
        if configuration.takeOver != nil { handedOver.set(true) }
        self.pool = BackendPool(group: group, configuration: configuration, metrics: metrics, logger: logger) { backends, sequence in
            // The pool is another process's to save while a handover is under way.
            if handedOver.isSet { return }
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
        // A process started by `baton proxy upgrade` takes the listeners and the pool over;
        // otherwise it opens its own and restores the saved backend list.
        var takeover: Takeover?
        if let path = configuration.takeOver { takeover = try await receiveHandover(from: path) }
        for saved in try takeover?.state.backends ?? store?.load() ?? [] {
            try pool.add(name: saved.name, address: try Endpoint(parsing: saved.address), restoredAs: saved)
        }
        assets?.restore(takeover?.state.assets ?? [])
        var inherited = takeover?.descriptors ?? [:]
        func descriptor(_ role: Handover.Role, _ endpoint: Endpoint) throws -> CInt {
            if let fd = inherited.removeValue(forKey: role) { return fd }
            return try ListeningSocket.open(endpoint)
        }

        if let takeover { try await checkTakeover(takeover) }
        // One quiescing helper per listener: a helper follows a single server channel.
        let server = try await bindProxy(descriptor(.proxy, configuration.listen), role: .proxy, tls: nil)
        var tlsServer: Listener?
        if let endpoint = configuration.tlsListen, let certificates {
            tlsServer = try await bindProxy(descriptor(.tls, endpoint), role: .tls, tls: certificates)
        }
        var redirectServer: Listener?
        if let endpoint = configuration.redirectListen, let httpsPort = tlsServer?.channel.localAddress?.port {
            redirectServer = try await bindRedirect(descriptor(.redirect, endpoint), httpsPort: httpsPort)
        }
        let listeners = [server, tlsServer, redirectServer].compactMap { $0 }
        proxyListeners.withLock { $0 = listeners.map(\.channel) }
        let api = AdminAPI(pool: pool, metrics: metrics, configuration: configuration, certificates: certificates, upgrader: self)
        let admin = AdminServer(api: api, group: group, logger: logger, requestTimeout: configuration.adminRequestTimeout)
        adminServer.withLock { $0 = admin }
        var unixAdmin: SocketAddress?
        if let path = configuration.adminSocket {
            let fd = try descriptor(.admin, .unix(path: path))
            chmod(path, 0o600)
            unixAdmin = try await serveAdmin(.admin, descriptor: fd, token: nil)
        }
        var tcpAdmin: SocketAddress?
        if let endpoint = configuration.adminListen {
            tcpAdmin = try await serveAdmin(.adminTCP, descriptor: try descriptor(.adminTCP, endpoint), token: configuration.adminToken)
        }
        // Listeners the previous process had and this one's configuration does not want.
        for fd in inherited.values { close(fd) }

        guard let proxyAddress = server.channel.localAddress else { throw BatonError(.io, "the proxy listener has no address") }
        let addresses = Addresses(proxy: proxyAddress, tls: tlsServer?.channel.localAddress, redirect: redirectServer?.channel.localAddress, admin: unixAdmin, adminTCP: tcpAdmin)
        logger.info("proxy listening", metadata: [
            "address": "\(proxyAddress)",
            "tls": "\(addresses.tls.map { "\($0)" } ?? "-")",
            "redirect": "\(addresses.redirect.map { "\($0)" } ?? "-")",
            "admin": "\(configuration.adminSocket ?? "-")",
            "admin_tcp": "\(tcpAdmin.map { "\($0)" } ?? "-")",
        ])
        running.succeed(addresses)

        try await withThrowingDiscardingTaskGroup { tasks in
            tasks.addTask { await HealthChecker(pool: self.pool, group: self.group).run() }
            if let assets { tasks.addTask { await assets.run(pool: self.pool) } }
            tasks.addTask {
                await withDiscardingTaskGroup { serving in
                    for await listener in self.adminListeners {
                        serving.addTask { await admin.serve(listener.channel, token: listener.token) }
                    }
                }
            }
            // systemd hears of the new main process before the old one can exit.
            SystemdNotifier.notify("MAINPID=\(getpid())\nREADY=1")
            if let takeover {
                try await confirmTakeover(takeover)
                handedOver.set(false)
                pool.persist()
            }

            // Run until asked to stop: SIGTERM through the ServiceGroup, task cancellation, or
            // a new process taking over.
            await withTaskGroup(of: Void.self) { waiting in
                waiting.addTask { try? await gracefulShutdown() }
                waiting.addTask { for await _ in self.stops { return } }
                await waiting.next()
                waiting.cancelAll()
            }
            lifecycle.withLock { $0 = .stopping }
            logger.info("shutting down: no new connections; finishing in-flight requests")
            closeAdminListeners()
            let closed = EventLoopFuture.andAllComplete(listeners.map { listener in
                let promise = group.any().makePromise(of: Void.self)
                listener.quiesce.initiateShutdown(promise: promise)
                return promise.futureResult
            }, on: group.any())
            // Whichever comes first: every connection done, or the shutdown timeout.
            let outcome = group.any().makePromise(of: Bool.self)
            closed.whenComplete { _ in outcome.succeed(true) }
            let deadline = group.any().scheduleTask(in: TimeAmount(configuration.shutdownTimeout)) { outcome.succeed(false) }
            if try await outcome.futureResult.get() == false {
                // What is still open at the deadline is cut when the event loops shut down.
                logger.warning("shutdown timeout: cutting connections still busy", metadata: [
                    "timeout": "\(configuration.shutdownTimeout.shortDescription)",
                    "cut": "\(openConnections.load(ordering: .relaxed))",
                ])
            }
            deadline.cancel()
            // An admin call being answered (the upgrade that stopped this process) gets its answer.
            let deadlineInstant = ContinuousClock.now + configuration.shutdownTimeout
            while admin.isBusy, ContinuousClock.now < deadlineInstant { try? await Task.sleep(for: .milliseconds(10)) }
            tasks.cancelAll()
        }
        // The socket file is the new process's now, when there is one.
        if let path = configuration.adminSocket, !handedOver.isSet { unlink(path) }
        descriptors.withLock { spares in
            for role in [Handover.Role.admin, .adminTCP] { if let fd = spares.removeValue(forKey: role) { close(fd) } }
        }
        logger.info("proxy stopped")
    }

    /// Serves the admin API on `descriptor`, keeping a duplicate so a failed upgrade can serve
    /// it again after this process closed its listener.
    func serveAdmin(_ role: Handover.Role, descriptor fd: CInt, token: String?) async throws -> SocketAddress? {
        let spare = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard spare >= 0 else { throw BatonError(.io, "cannot keep the admin listener: dup: \(String(cString: strerror(errno)))") }
        guard let admin = adminServer.withLock({ $0 }) else {
            close(spare)
            throw BatonError(.io, "the admin server is not set up")
        }
        let channel: NIOAsyncChannel<AdminServer.Connection, Never>
        let address: SocketAddress?
        do {
            (channel, address) = try await admin.bind(descriptor: fd, isTCP: role == .adminTCP)
        } catch {
            close(spare)
            throw error
        }
        descriptors.withLock { $0[role] = spare }
        adminChannels.withLock { $0.append(channel.channel) }
        adminListenerQueue.yield(AdminListener(channel: channel, token: token))
        return address
    }

    /// Stops accepting admin connections; those open are served to their end.
    func closeAdminListeners() {
        for channel in adminChannels.withLock({ channels in defer { channels = [] }; return channels }) { channel.close(promise: nil) }
    }

    /// Reads the TLS certificate files again (SIGHUP, `POST /tls/reload`); on error the ones in
    /// use stay and the error is thrown.
    public func reloadCertificates() throws {
        guard let certificates else { throw BatonError(.invalidArgument, "no --tls-listen: there are no certificates to reload") }
        try certificates.reload()
        logger.info("TLS certificates reloaded", metadata: ["names": "\(certificates.summary.flatMap(\.names).joined(separator: ","))"])
    }

    /// A listener and what stops it gracefully: it closes, and its connections are told to
    /// finish their request and close.
    struct Listener {
        var channel: any Channel
        var quiesce: ServerQuiescingHelper
    }

    func bindProxy(_ descriptor: CInt?, role: Handover.Role?, tls: TLSCertificates?) async throws -> Listener {
        let quiesce = ServerQuiescingHelper(group: group)
        let pool = self.pool
        let configuration = self.configuration
        let metrics = self.metrics
        let logger = self.logger
        let accessLog = self.accessLog
        let assets = self.assets
        let wheels = Dictionary(uniqueKeysWithValues: group.makeIterator().map { (ObjectIdentifier($0), TimerWheel(eventLoop: $0)) })
        let bootstrap = serverBootstrap(quiesce)
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
        return Listener(channel: try await bind(bootstrap, descriptor: descriptor, role: role), quiesce: quiesce)
    }

    /// A listener's bootstrap whose server channel `quiesce` follows.
    private func serverBootstrap(_ quiesce: ServerQuiescingHelper) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
    }

    /// The `--redirect-listen` listener: every request gets a 308 to the same path on HTTPS.
    private func bindRedirect(_ descriptor: CInt, httpsPort: Int) async throws -> Listener {
        let quiesce = ServerQuiescingHelper(group: group)
        let headerTimeout = configuration.headerTimeout
        let bootstrap = serverBootstrap(quiesce)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: TimeAmount(headerTimeout)))
                    try sync.addHandler(HTTPResponseEncoder())
                    try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try sync.addHandler(HTTPSRedirectHandler(httpsPort: httpsPort))
                }
            }
        return Listener(channel: try await bind(bootstrap, descriptor: descriptor, role: .redirect), quiesce: quiesce)
    }

    /// Serves `descriptor` (noted under `role`, for a handover), or a new listener on a port the
    /// system picks on 127.0.0.1 when nil (the takeover's self-check).
    private func bind(_ bootstrap: ServerBootstrap, descriptor: CInt?, role: Handover.Role?) async throws -> any Channel {
        guard let descriptor else { return try await bootstrap.bind(host: "127.0.0.1", port: 0).get() }
        let channel = try await bootstrap.withBoundSocket(descriptor).get()
        if let role { descriptors.withLock { $0[role] = descriptor } }
        return channel
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
