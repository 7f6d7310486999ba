import ArgumentParser
import BatonCore
import BatonProxy
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `baton proxy [options]` runs the proxy (so `--help` lists its options);
/// `baton proxy backends …` talks to a running one.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the reverse proxy in front of the app servers, or manage a running proxy's backends.",
        discussion: """
            Requests go to the ready backend with the fewest requests in flight. A request that fails before any response byte is retried on another backend when that is safe; while no backend is ready, requests wait up to --max-hold. SIGTERM or Ctrl-C stops accepting, lets in-flight requests finish (up to --shutdown-timeout), and exits.

            Facing the internet: framing headers are written by the proxy from what it parsed (no request smuggling); CONNECT and transfer codings other than chunked are refused; WebSockets pass through and are closed with a close frame when their backend drains; X-Forwarded-Host/-Proto say what the proxy saw unless the peer is a --trusted-proxy; clients, pipelined requests, held requests and backend connections are bounded; every request state has a timeout.

            Backends are added by `baton deploy` (named NODE-RELEASE, e.g. web1-5.4, each with baton.yml's health check) or by hand with `baton proxy backends add`; --backend adds some at start, and a backend the saved state file already has (by name or address) is kept as it was. The --health-* options are the check for backends added without one.

            Version affinity (--affinity): while two releases run side by side, a client keeps to the release that served it first, for as long as a backend of that release is ready. Browsers are pinned by a cookie (baton-release) the proxy sets; API clients and services send X-Baton-Pin: RELEASE, and the proxy passes the serving release to the backend in X-Baton-Pin so the app can put it on its own calls. New clients go to the release added most recently. When a pinned release has no ready backend left the request goes to the newest one and the response says X-Baton-Release-Moved: OLD -> NEW, so the page can offer a reload. Deploys tell the proxy each backend's release; by hand: backends add --release.

            Asset continuity (--asset-prefix with --asset-manifest): when a release's first backend is ready the proxy reads its asset manifest and keeps every asset it lists in memory (up to --asset-cache-size, oldest release dropped first), and answers requests for them itself. A page of the old release still loads its content-hashed scripts after the last old backend is gone.

            Upgrading the proxy itself: `baton proxy upgrade` or SIGUSR2 starts the new binary with the same command line and hands it the listening sockets and the backend pool; the old process drains and exits once the new one serves. No connection is refused.

            Examples:
              baton proxy --listen 127.0.0.1:8080
              baton proxy --listen 127.0.0.1:8080 --backend app1=127.0.0.1:3001 --backend app2=127.0.0.1:3002
              baton proxy --listen :8080 --admin-socket /run/baton/proxy.sock --health-path /healthz
              baton proxy --listen :8080 --affinity --asset-prefix /assets/ --asset-manifest /assets/manifest.json
              baton proxy --listen :8080 --tls-listen :443 --tls-certificate site.pem,site.key --tls-certificate api.pem,api.key --redirect-listen :80
              baton proxy --listen :80 --trusted-proxy 10.0.0.0/8 --hide-backend-headers --access-log /var/log/baton/access.log
              BATON_ADMIN_TOKEN=secret baton proxy --admin-listen 127.0.0.1:9090
            """,
        subcommands: [ProxyBackendsCommand.self, ProxyTLSCommand.self, ProxyUpgradeCommand.self, ProxyServiceCommand.self]
    )

    @Option(help: "Address to serve on (host:port).")
    var listen: Endpoint = .tcp(host: "127.0.0.1", port: 8080)

    @Option(help: "Also serve HTTPS on this address (host:port), with the --tls-certificate pairs.")
    var tlsListen: Endpoint?

    @Option(help: "CERT.pem,KEY.pem for --tls-listen (repeatable): the first is the default, the others are chosen by the name the client asks for (SNI). SIGHUP or `baton proxy tls reload` reads them again.")
    var tlsCertificate: [String] = []

    @Option(help: "Answer every request on this address (host:port) with a redirect to the HTTPS listener.")
    var redirectListen: Endpoint?

    @OptionGroup var admin: AdminOptions

    @Option(help: "Also serve the admin API on TCP (needs --admin-token or BATON_ADMIN_TOKEN).")
    var adminListen: Endpoint?

    @Option(help: "File the backend list is saved in, restored on restart.")
    var stateFile: String = ".baton/proxy-backends.json"

    @Option(name: .customLong("backend"), help: "NAME=HOST:PORT to add at start (repeatable).")
    var backends: [String] = []

    @OptionGroup var health: HealthOptions
    @Option(help: "Default drain timeout (e.g. 30s).") var drainTimeout = DefaultDrainTimeout
    @Option(help: "How long a request waits while no backend is ready (e.g. 30s).") var maxHold = DefaultMaxHold
    @Option(help: "How long the backend may stay silent before a 504.") var responseTimeout = DefaultResponseTimeout
    @Option(help: "How long a client may take to send a request head.") var headerTimeout = DefaultHeaderTimeout
    @Option(help: "Idle keep-alive time before a client connection is closed.") var idleTimeout = DefaultIdleTimeout
    @Option(help: "Backend connect timeout.") var connectTimeout = DefaultConnectTimeout
    @Option(help: "Attempts per request, the first included.") var maxAttempts = DefaultMaxAttempts
    @Option(help: "Request body kept for a retry (e.g. 64KiB).") var retryBuffer = "64KiB"
    @Option(help: "How long a client may pause while sending a request body (408 after).") var bodyTimeout = DefaultBodyTimeout
    @Option(help: "How long a client may take nothing of a response before it is cut.") var writeTimeout = DefaultWriteTimeout
    @Option(help: "On SIGTERM: how long in-flight requests may finish before the rest are cut.") var shutdownTimeout = DefaultShutdownTimeout
    @Option(help: "Retire pooled backend connections idle this long (keep it below the backend's keep-alive timeout).")
    var backendIdleTimeout = DefaultBackendIdleTimeout
    @Option(help: "After a 'Connection: close' response, how long the backend may take to close (its worker counts as busy meanwhile; 0 closes at once).")
    var backendCloseGrace = DefaultBackendCloseGrace
    @Option(help: "Client connections open at once; more are closed on arrival.") var maxConnections = DefaultMaxConnections
    @Option(help: "Connections to one backend per thread; requests beyond wait for one.") var maxConnectionsPerBackend = DefaultMaxConnectionsPerBackend
    @Option(help: "Requests held while no backend is ready; more get 503 at once.") var maxHeld = DefaultMaxHeld
    @Option(help: "Pipelined requests read ahead of the one in flight.") var maxQueuedRequests = DefaultMaxQueuedRequests
    @Option(help: "A drain closes a backend's WebSockets spread over at most this long.") var websocketCloseWindow = DefaultTunnelCloseWindow
    @Option(help: "CIDR of a proxy in front whose X-Forwarded-Host/-Proto are kept (repeatable).") var trustedProxy: [String] = []
    @Flag(help: "Version affinity: a client keeps to the release it started on while any of its backends is ready (cookie baton-release or header X-Baton-Pin); new clients go to the newest release.")
    var affinity = false
    @Option(help: "Path under which the app serves content-hashed assets (e.g. /assets/); with --asset-manifest, each release's are kept after its backends are gone.")
    var assetPrefix: String?
    @Option(help: "Path of the app's asset manifest (any JSON listing the asset files, e.g. /assets/manifest.json), fetched from each release when it comes up.")
    var assetManifest: String?
    @Option(help: "Memory for kept assets; the oldest release's go first (e.g. 64MiB).") var assetCacheSize = "64MiB"
    @Flag(help: "Leave X-Baton-Backend out of responses and drop the app's X-Baton-Release (public side).") var hideBackendHeaders = false
    @Option(help: "One JSON line per request to this file, or - for stderr (off by default).") var accessLog: String?
    @Option(help: "Event loop threads (default: one per core).") var threads: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"
    /// Given by `baton proxy upgrade` to the process it starts: where its predecessor waits.
    @Option(help: .hidden) var takeOver: String?

    func run() async throws {
        try await failing {
            guard let bufferLimit = ByteSize.parse(retryBuffer) else {
                throw BatonError(.invalidArgument, "--retry-buffer '\(retryBuffer)': expected a size such as 64KiB or 65536")
            }
            var configuration = ProxyConfiguration(
                listen: listen,
                adminSocket: admin.adminSocket,
                adminListen: adminListen,
                adminToken: admin.token,
                stateFile: stateFile,
                healthCheck: health.check,
                drainTimeout: drainTimeout,
                maxHold: maxHold,
                responseTimeout: responseTimeout,
                headerTimeout: headerTimeout,
                idleTimeout: idleTimeout,
                connectTimeout: connectTimeout,
                retry: RetryPolicy(maxAttempts: maxAttempts, bufferLimit: bufferLimit),
                threads: threads ?? ProcessInfo.processInfo.activeProcessorCount
            )
            configuration.bodyTimeout = bodyTimeout
            configuration.writeTimeout = writeTimeout
            configuration.shutdownTimeout = shutdownTimeout
            configuration.backendIdleTimeout = backendIdleTimeout
            configuration.backendCloseGrace = backendCloseGrace
            configuration.maxConnections = maxConnections
            configuration.maxConnectionsPerBackend = maxConnectionsPerBackend
            configuration.maxHeld = maxHeld
            configuration.maxQueuedRequests = maxQueuedRequests
            configuration.tunnelCloseWindow = websocketCloseWindow
            configuration.trustedProxies = try TrustedProxies(parsing: trustedProxy)
            configuration.exposeBackendHeaders = !hideBackendHeaders
            configuration.affinity = affinity
            configuration.assetPrefix = assetPrefix
            configuration.assetManifest = assetManifest
            guard let assetLimit = ByteSize.parse(assetCacheSize) else {
                throw BatonError(.invalidArgument, "--asset-cache-size '\(assetCacheSize)': expected a size such as 64MiB")
            }
            configuration.assetCacheLimit = assetLimit
            configuration.tlsListen = tlsListen
            configuration.tlsCertificates = try tlsCertificate.map(TLSCertificateFiles.init(parsing:))
            configuration.redirectListen = redirectListen
            configuration.accessLog = accessLog
            configuration.takeOver = takeOver
            configuration.command = Self.command()
            let initial = try backends.map { spec -> (String, Endpoint) in
                let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else {
                    throw BatonError(.invalidArgument, "--backend '\(spec)': expected NAME=HOST:PORT, e.g. web1=127.0.0.1:3001")
                }
                return (parts[0], try Endpoint(parsing: parts[1]))
            }
            var logger = Logger(label: "baton.proxy")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            let server = try ProxyServer(configuration: configuration, logger: logger)
            let signalLogger = logger
            // The proxy also ends on its own, once a new process took over (`baton proxy upgrade`).
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: server, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                _ = try await server.waitUntilRunning()
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sigusr2) {
                        do {
                            _ = try await server.upgrade(binary: nil)
                        } catch {
                            signalLogger.error("SIGUSR2: \(error)")
                        }
                    }
                }
                // Trapped with or without TLS: SIGHUP's default (`systemctl reload`) would end the proxy.
                tasks.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        guard server.certificates != nil else {
                            signalLogger.notice("SIGHUP: no --tls-listen, nothing to reload")
                            continue
                        }
                        do {
                            try server.reloadCertificates()
                        } catch {
                            signalLogger.error("SIGHUP: certificates not reloaded; the ones in use stay: \(error)")
                        }
                    }
                }
                // The saved state wins: a restart with the same command line must not fail on
                // a backend it restored (or that a deploy re-added under its own name).
                let restored = server.pool.list()
                for (name, address) in initial {
                    if let same = restored.first(where: { $0.name == name || $0.address == address.description }) {
                        logger.notice("--backend \(name)=\(address): kept as restored from the state file (\(same.name) at \(same.address))")
                        continue
                    }
                    try server.pool.add(name: name, address: address)
                }
                // The proxy stopped: the signal watcher goes too.
                _ = try await tasks.next()
                tasks.cancelAll()
            }
        }
    }
}

extension ProxyCommand {
    /// This process's command line without --take-over, with the executable as an absolute path
    /// found the way the shell found it: an upgrade runs the file there now (a new binary
    /// installed over the old one), not the one this process was loaded from.
    static func command() -> [String] {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if let index = arguments.firstIndex(where: { $0 == "--take-over" || $0.hasPrefix("--take-over=") }) {
            arguments.removeSubrange(index..<min(arguments.count, index + (arguments[index].contains("=") ? 1 : 2)))
        }
        let name = CommandLine.arguments.first ?? "baton"
        var executable = name
        if !name.contains("/") {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            executable = path.split(separator: ":").map { "\($0)/\(name)" }.first(where: FileManager.default.isExecutableFile(atPath:)) ?? name
        }
        if !executable.hasPrefix("/") {
            executable = FileManager.default.currentDirectoryPath + "/" + executable
        }
        // Normalized without resolving symbolic links: a link switched to a new release is
        // followed at the upgrade.
        return [URL(fileURLWithPath: executable).standardized.path] + arguments
    }
}

struct ProxyBackendsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backends",
        abstract: "List, add, drain, ready or remove a running proxy's backends.",
        discussion: """
            Examples:
              baton proxy backends list
              baton proxy backends add web3 127.0.0.1:3003
              baton proxy backends drain web1 --timeout 30s
              baton proxy backends ready web1
              baton proxy backends remove web1
            """,
        subcommands: [List.self, Add.self, Drain.self, Ready.self, Remove.self]
    )

    struct Connection: ParsableArguments {
        @OptionGroup var shared: AdminOptions
        @Option(help: "The proxy's TCP admin address instead of the socket (with --admin-token).")
        var admin: Endpoint?
        @Flag(help: "Print JSON.")
        var json = false

        var client: AdminClient {
            AdminClient(endpoint: admin ?? .unix(path: shared.adminSocket), token: shared.token)
        }

        func print<T: Encodable>(_ value: T, text: () -> String) throws {
            if json {
                try printJSON(value)
            } else {
                Swift.print(text())
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List backends with state and in-flight requests.")
        @OptionGroup var connection: Connection
        func run() async throws {
            try await failing {
                let backends = try await connection.client.list()
                try connection.print(backends) {
                    guard !backends.isEmpty else { return "no backends" }
                    let rows = backends.map { [$0.name, $0.address, $0.state.rawValue, $0.healthy ? "yes" : "no", String($0.inFlight)] }
                    return Table.render(header: ["NAME", "ADDRESS", "STATE", "HEALTHY", "IN-FLIGHT"], rows: rows)
                }
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a backend; it takes traffic once its health checks pass.",
            discussion: """
                The --health-* options give this backend its own check; without them it gets the
                proxy's defaults (its own --health-* flags).

                Examples:
                  baton proxy backends add web3 127.0.0.1:3003 --timeout 60s
                  baton proxy backends add web3-5.4 127.0.0.1:3003 --release 5.4
                  baton proxy backends add api1 10.0.0.7:8000 --health-path /healthz --health-fall 5
                """
        )
        @OptionGroup var connection: Connection
        @Argument(help: "Backend name.") var name: String
        @Argument(help: "HOST:PORT.") var address: String
        @Option(help: "The app release it runs (version affinity keeps clients to one release).") var release: String?
        @Option(help: "How long to wait for it to become healthy.") var timeout = DefaultMaxHold
        @Flag(help: "Return at once instead of waiting for health checks.") var noWait = false
        @OptionGroup var health: HealthOptions

        func run() async throws {
            try await failing {
                let info = try await connection.client.add(name: name, address: address, release: release, health: health.given, wait: !noWait, timeout: timeout)
                try connection.print(info) { "\(info.name) \(info.address): \(info.state.rawValue)" }
            }
        }
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop sending new requests to a backend and wait for its in-flight ones.",
            discussion: "Example: baton proxy backends drain web1 --timeout 30s"
        )
        @OptionGroup var connection: Connection
        @Argument(help: "Backend name.") var name: String
        @Option(help: "Cut the remaining requests after this long.") var timeout = DefaultDrainTimeout
        func run() async throws {
            try await failing {
                let result = try await connection.client.drain(name, timeout: timeout)
                try connection.print(result) {
                    "\(result.name) drained in \(result.elapsedMilliseconds)ms"
                        + (result.cut > 0 ? "; \(result.cut) in-flight request(s) cut at the timeout" : "")
                }
            }
        }
    }

    struct Ready: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a drained backend back into rotation.",
            discussion: "Example: baton proxy backends ready web1"
        )
        @OptionGroup var connection: Connection
        @Argument(help: "Backend name.") var name: String
        func run() async throws {
            try await failing {
                let info = try await connection.client.markReady(name)
                try connection.print(info) { "\(info.name): \(info.state.rawValue)" }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a backend (in-flight requests finish; drain first to wait for them).",
            discussion: "Example: baton proxy backends remove web1"
        )
        @OptionGroup var connection: Connection
        @Argument(help: "Backend name.") var name: String
        func run() async throws {
            try await failing {
                try await connection.client.remove(name)
                try connection.print(["removed": name]) { "\(name) removed" }
            }
        }
    }
}

// `baton proxy` runs the proxy and is also the parent of `baton proxy backends …`, and
// ArgumentParser gives an option that parent and child both name to the parent. So the options
// both sides mean the same way by (the admin socket and token, the health check) are one
// group each, declared by both: every command in the path reads the same values.

/// Where the proxy's admin API is and the token for its TCP side.
struct AdminOptions: ParsableArguments {
    @Option(help: "The proxy's admin Unix socket.")
    var adminSocket: String = ".baton/proxy.sock"
    @Option(help: "Bearer token for the TCP admin API (or BATON_ADMIN_TOKEN).")
    var adminToken: String?

    var token: String? { adminToken ?? ProcessInfo.processInfo.environment["BATON_ADMIN_TOKEN"] }
}

/// A health check given on the command line: the proxy's default for backends added without
/// one, or one backend's own check in `backends add`.
struct HealthOptions: ParsableArguments {
    @Option(help: "Health check path (default \(DefaultHealthCheckPath)).") var healthPath: String?
    @Option(help: "Time between health checks (default \(DefaultHealthCheckInterval.shortDescription)).") var healthInterval: Duration?
    @Option(help: "Health check timeout (default \(DefaultHealthCheckTimeout.shortDescription)).") var healthTimeout: Duration?
    @Option(help: "Passing checks before a backend takes traffic (default \(DefaultHealthRise)).") var healthRise: Int?
    @Option(help: "Failing checks before a ready backend is taken out (default \(DefaultHealthFall)).") var healthFall: Int?

    /// The check, with the defaults for what is not given.
    var check: HealthCheck {
        HealthCheck(
            path: healthPath ?? DefaultHealthCheckPath,
            interval: healthInterval ?? DefaultHealthCheckInterval,
            timeout: healthTimeout ?? DefaultHealthCheckTimeout,
            rise: healthRise ?? DefaultHealthRise,
            fall: healthFall ?? DefaultHealthFall
        )
    }

    /// The check when any --health-* option is given, else nil (the proxy's own default).
    var given: HealthCheck? {
        healthPath == nil && healthInterval == nil && healthTimeout == nil && healthRise == nil && healthFall == nil ? nil : check
    }
}
