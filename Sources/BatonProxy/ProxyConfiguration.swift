import BatonCore
import NIOCore

public let DefaultDrainTimeout = Duration.seconds(30)
public let DefaultMaxHold = Duration.seconds(30)
public let DefaultResponseTimeout = Duration.seconds(30)
public let DefaultHeaderTimeout = Duration.seconds(10)
public let DefaultIdleTimeout = Duration.seconds(75)
public let DefaultConnectTimeout = Duration.seconds(2)
public let DefaultMaxAttempts = 3
public let DefaultRetryBufferLimit = 64 * 1024
public let DefaultMaxIdleConnectionsPerBackend = 64
public let DefaultBodyTimeout = Duration.seconds(30)
public let DefaultWriteTimeout = Duration.seconds(30)
public let DefaultShutdownTimeout = Duration.seconds(30)
/// Pooled backend connections are retired after this long idle: below gunicorn's 2 s and
/// Node's 5 s keep-alive, so a backend never closes one just as a request goes out on it.
public let DefaultBackendIdleTimeout = Duration.seconds(1)
/// How long a backend that answered `Connection: close` may take to close the connection
/// after its response, while the request still counts against it (its worker is still busy).
public let DefaultBackendCloseGrace = Duration.seconds(2)
public let DefaultMaxConnections = 20_000
public let DefaultMaxConnectionsPerBackend = 1_000
public let DefaultMaxHeld = 10_000
/// Pipelined requests read ahead of the one in flight before the proxy stops reading a client.
public let DefaultMaxQueuedRequests = 16
/// How long an admin connection has to send its next whole request.
public let DefaultAdminRequestTimeout = Duration.seconds(10)
/// The longest a drain spreads the closing of a backend's WebSockets over.
public let DefaultTunnelCloseWindow = Duration.seconds(5)

/// Everything `baton proxy` can be told. Defaults follow kamal-proxy where it has one.
public struct ProxyConfiguration: Sendable {
    public var listen: Endpoint
    public var adminSocket: String?
    /// Admin API on TCP; allowed only together with `adminToken`.
    public var adminListen: Endpoint?
    public var adminToken: String?
    /// Where the backend list is persisted; nil keeps it in memory only.
    public var stateFile: String?

    /// For backends added without a health check of their own (a deploy always sends one).
    public var healthCheck: HealthCheck
    public var drainTimeout: Duration
    public var maxHold: Duration
    public var responseTimeout: Duration
    public var headerTimeout: Duration
    public var idleTimeout: Duration
    public var connectTimeout: Duration
    public var retry: RetryPolicy
    public var maxIdleConnectionsPerBackend: Int
    /// Event loop threads; defaults to the core count.
    public var threads: Int
    /// How long a client may pause while sending a request body (408 after).
    public var bodyTimeout = DefaultBodyTimeout
    /// How long a client may take nothing of a response it is owed before it is cut.
    public var writeTimeout = DefaultWriteTimeout
    /// Graceful shutdown: after this long, connections still busy are cut (and counted).
    public var shutdownTimeout = DefaultShutdownTimeout
    public var backendIdleTimeout = DefaultBackendIdleTimeout
    /// After a `Connection: close` response: how long to wait for the backend's own close,
    /// during which its request still counts in flight (0: close at once).
    public var backendCloseGrace = DefaultBackendCloseGrace
    /// Client connections open at once; more are closed as they arrive.
    public var maxConnections = DefaultMaxConnections
    /// Connections to one backend from one event loop, in use or idle; requests beyond wait.
    public var maxConnectionsPerBackend = DefaultMaxConnectionsPerBackend
    /// Requests held while no backend is ready; more get 503 at once.
    public var maxHeld = DefaultMaxHeld
    public var maxQueuedRequests = DefaultMaxQueuedRequests
    public var tunnelCloseWindow = DefaultTunnelCloseWindow
    public var adminRequestTimeout = DefaultAdminRequestTimeout
    /// Peers whose X-Forwarded-Host/-Proto are kept.
    public var trustedProxies = TrustedProxies.none
    /// Access log: nil for none, "-" for stderr, else a file appended to.
    public var accessLog: String?
    /// Whether responses name the backend (`X-Baton-Backend`, the app's `X-Baton-Release`).
    public var exposeBackendHeaders = true
    /// HTTPS listener, served with `tlsCertificates` (the first is the default, others by SNI).
    public var tlsListen: Endpoint?
    public var tlsCertificates: [TLSCertificateFiles] = []
    /// A listener that answers every request with a redirect to the HTTPS listener.
    public var redirectListen: Endpoint?
    /// Asset continuity: content-hashed assets under `assetPrefix`, listed by each release's
    /// `assetManifest`, are kept in up to `assetCacheLimit` bytes (`AssetCache`).
    public var assetPrefix: String?
    public var assetManifest: String?
    public var assetCacheLimit = 64 << 20
    /// Version affinity: clients keep to the release they started on (`VersionAffinity`).
    public var affinity = false
    /// How this proxy was started (absolute executable path, then its arguments), so
    /// `baton proxy upgrade` can start its successor the same way; nil: it cannot be upgraded.
    public var command: [String]?
    /// Set in the process an upgrade starts: where to receive the listeners and the pool.
    public var takeOver: String?
    /// How long a new process has to take over before the upgrade is called off.
    public var upgradeTimeout: Duration = .seconds(30)

    public init(
        listen: Endpoint = .tcp(host: "127.0.0.1", port: 0),
        adminSocket: String? = nil,
        adminListen: Endpoint? = nil,
        adminToken: String? = nil,
        stateFile: String? = nil,
        healthCheck: HealthCheck = .init(),
        drainTimeout: Duration = DefaultDrainTimeout,
        maxHold: Duration = DefaultMaxHold,
        responseTimeout: Duration = DefaultResponseTimeout,
        headerTimeout: Duration = DefaultHeaderTimeout,
        idleTimeout: Duration = DefaultIdleTimeout,
        connectTimeout: Duration = DefaultConnectTimeout,
        retry: RetryPolicy = .init(),
        maxIdleConnectionsPerBackend: Int = DefaultMaxIdleConnectionsPerBackend,
        threads: Int = System.coreCount
    ) {
        self.listen = listen
        self.adminSocket = adminSocket
        self.adminListen = adminListen
        self.adminToken = adminToken
        self.stateFile = stateFile
        self.healthCheck = healthCheck
        self.drainTimeout = drainTimeout
        self.maxHold = maxHold
        self.responseTimeout = responseTimeout
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
        self.connectTimeout = connectTimeout
        self.retry = retry
        self.maxIdleConnectionsPerBackend = maxIdleConnectionsPerBackend
        self.threads = threads
    }

    /// Rejects combinations that would be unsafe or meaningless, naming the option.
    public func validate() throws {
        if adminListen != nil && (adminToken ?? "").isEmpty {
            throw BatonError(.invalidConfiguration, "--admin-listen: the admin API on TCP needs --admin-token (or BATON_ADMIN_TOKEN)")
        }
        // The same rules as every backend's own check, named as the options that set it.
        try healthCheck.validate { "--health-\($0)" }
        if tlsListen != nil && tlsCertificates.isEmpty {
            throw BatonError(.invalidConfiguration, "--tls-listen: needs at least one --tls-certificate CERT.pem,KEY.pem")
        }
        if tlsListen == nil && !tlsCertificates.isEmpty {
            throw BatonError(.invalidConfiguration, "--tls-certificate: given without --tls-listen, so nothing would serve it")
        }
        if redirectListen != nil && tlsListen == nil {
            throw BatonError(.invalidConfiguration, "--redirect-listen: redirects to the HTTPS listener, so it needs --tls-listen")
        }
        if (assetPrefix == nil) != (assetManifest == nil) {
            throw BatonError(.invalidConfiguration, "--asset-prefix and --asset-manifest go together: the manifest lists the assets kept under the prefix")
        }
        if let prefix = assetPrefix, !prefix.hasPrefix("/") || prefix.count < 2 {
            throw BatonError(.invalidConfiguration, "--asset-prefix '\(prefix)': expected a path such as /assets/")
        }
        if let manifest = assetManifest, !manifest.hasPrefix("/") {
            throw BatonError(.invalidConfiguration, "--asset-manifest '\(manifest)': expected a path on the app such as /assets/manifest.json")
        }
        if assetCacheLimit < 1 { throw BatonError(.invalidConfiguration, "--asset-cache-size: expected more than 0 bytes") }
        if retry.maxAttempts < 1 { throw BatonError(.invalidConfiguration, "--max-attempts: expected 1 or more, got \(retry.maxAttempts)") }
        if threads < 1 { throw BatonError(.invalidConfiguration, "--threads: expected 1 or more, got \(threads)") }
        if backendCloseGrace < .zero { throw BatonError(.invalidConfiguration, "--backend-close-grace: expected 0 or more, got \(backendCloseGrace.shortDescription)") }
        for (option, value) in [("--max-connections", maxConnections), ("--max-connections-per-backend", maxConnectionsPerBackend), ("--max-held", maxHeld), ("--max-queued-requests", maxQueuedRequests)] where value < 1 {
            throw BatonError(.invalidConfiguration, "\(option): expected 1 or more, got \(value)")
        }
    }
}
