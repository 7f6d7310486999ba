import BatonCore
import BatonProxy
import Foundation
import Logging
import ServiceLifecycle

/// A real `ProxyServer` for tests: listening on 127.0.0.1 port 0, admin API on a Unix socket in
/// a temporary directory, run in a `ServiceGroup` and shut down gracefully by `shutdown()`.
public final class LiveProxy: Sendable {
    public let server: ProxyServer
    public let endpoint: Endpoint
    public let adminEndpoint: Endpoint
    /// Every address it listens on (HTTPS and redirect listeners included).
    public let addresses: ProxyServer.Addresses
    public let directory: String
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// - Parameter configure: adjusts the test defaults (fast health checks, short timeouts).
    public static func start(
        directory: String? = nil,
        _ configure: (inout ProxyConfiguration) -> Void = { _ in }
    ) async throws -> LiveProxy {
        let directory = directory ?? TemporaryDirectory.make(prefix: "baton-proxy")
        var configuration = ProxyConfiguration(
            listen: .tcp(host: "127.0.0.1", port: 0),
            adminSocket: directory + "/admin.sock",
            stateFile: directory + "/backends.json",
            healthCheck: HealthCheck(interval: .milliseconds(100), timeout: .milliseconds(500), rise: 2, fall: 2),
            drainTimeout: .seconds(10),
            maxHold: .seconds(5),
            responseTimeout: .seconds(10),
            threads: 2
        )
        configure(&configuration)
        var logger = Logger(label: "baton.proxy.test")
        logger.logLevel = ProcessInfo.processInfo.environment["BATON_TEST_LOG"] == nil ? .warning : .debug
        let server = try ProxyServer(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        let task = Task { try await group.run() }
        let addresses = try await server.waitUntilRunning()
        return LiveProxy(
            server: server,
            endpoint: .tcp(host: "127.0.0.1", port: addresses.proxy.port ?? 0),
            adminEndpoint: .unix(path: configuration.adminSocket!),
            addresses: addresses,
            directory: directory,
            group: group,
            task: task
        )
    }

    private init(server: ProxyServer, endpoint: Endpoint, adminEndpoint: Endpoint, addresses: ProxyServer.Addresses, directory: String, group: ServiceGroup, task: Task<Void, any Error>) {
        self.server = server
        self.endpoint = endpoint
        self.adminEndpoint = adminEndpoint
        self.addresses = addresses
        self.directory = directory
        self.group = group
        self.task = task
    }

    public var admin: AdminClient { AdminClient(endpoint: adminEndpoint) }

    /// Graceful shutdown: waits for in-flight requests, then for the service to return.
    public func shutdown() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

public enum TemporaryDirectory {
    /// A new empty directory under the system's temporary directory. Unix socket paths must stay
    /// short (about 100 bytes), so the name is short too.
    public static func make(prefix: String) -> String {
        let path = "/tmp/\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

public enum ProcessMemory {
    /// This process's resident set size in bytes, from /proc/self/status.
    public static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }
}
