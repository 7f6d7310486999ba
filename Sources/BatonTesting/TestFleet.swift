import BatonCore
import BatonProxy
import BatonRollout
import BatonTesting
import Foundation
import NIOConcurrencyHelpers

/// A fleet for deploy tests and benchmarks: a live proxy (and, when given, an HAProxy beside it), releases 5.3 and 5.4 of TranslateApp
/// (each a `run` script that execs the built binary, with an optional fault), and a baton.yml
/// for `nodes` nodes on free ports. `cleanup()` stops every process the fleet started.
public final class TestFleet: Sendable {
    public let directory: String
    public let proxy: LiveProxy
    public let configPath: String
    public let config: BatonConfig
    public let nodeCount: Int

    public static func make(
        nodes: Int = 4,
        faults: [String: String] = [:],
        rollout: String = "max_unavailable: 1\n  canary: 1\n  observe: 0s",
        startupGrace: String = "10s",
        health: String = "interval: 50ms\n  timeout: 1s\n  rise: 2\n  min_ready: 100ms",
        extra: String = "",
        openapi: [String: String] = [:],
        proxyHealthPath: String = DefaultHealthCheckPath,
        haproxy: LiveHAProxy? = nil
    ) async throws -> TestFleet {
        let directory = TemporaryDirectory.make(prefix: "baton-deploy")
        // The proxy's own check is only for backends added by hand: a deploy sends baton.yml's.
        let proxy = try await LiveProxy.start(directory: directory + "/proxy") {
            $0.healthCheck = HealthCheck(path: proxyHealthPath, interval: .milliseconds(50), timeout: .milliseconds(500), rise: 1, fall: 2)
        }
        let app = try BuiltProducts.path("TranslateApp")
        for release in ["5.3", "5.4"] {
            let artifact = "\(directory)/artifacts/\(release)"
            try FileManager.default.createDirectory(atPath: artifact, withIntermediateDirectories: true)
            let fault = faults[release].map { "TRANSLATE_FAULT='\($0)' " } ?? ""
            try "#!/bin/sh\n\(fault)exec '\(app)' \"$@\"\n".write(toFile: "\(artifact)/run", atomically: true, encoding: .utf8)
            chmod("\(artifact)/run", 0o755)
            try openapi[release]?.write(toFile: "\(artifact)/openapi.yaml", atomically: true, encoding: .utf8)
        }
        let driver = LocalProcessDriver(stateDirectory: directory)
        let nodeLines = try (1...nodes).map { "  - { name: web\($0), port: \(try driver.freePort(node: "web\($0)")) }" }.joined(separator: "\n")
        let yaml = """
            service: translate
            state_dir: .baton
            proxies:
              - admin_socket: \(directory)/proxy/admin.sock
            \(haproxy.map { "  - haproxy: { socket: \($0.socket), backend: \($0.backend) }" } ?? "")
            nodes:
            \(nodeLines)
            release:
              start: "{dir}/run --release {release} --port {port}"
              stop_grace: 5s
            health:
              \(health)
              startup_grace: \(startupGrace)
            rollout:
              \(rollout)
              drain_timeout: 5s
            \(extra)
            """
        let configPath = directory + "/baton.yml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try BatonConfig.load(path: configPath)
        let store = ReleaseStore(stateDirectory: config.stateDirectory)
        for release in ["5.3", "5.4"] {
            try store.add(source: "\(directory)/artifacts/\(release)", id: release, keep: 5, protected: [])
        }
        return TestFleet(directory: directory, proxy: proxy, configPath: configPath, config: config, nodeCount: nodes)
    }

    private init(directory: String, proxy: LiveProxy, configPath: String, config: BatonConfig, nodeCount: Int) {
        self.directory = directory
        self.proxy = proxy
        self.configPath = configPath
        self.config = config
        self.nodeCount = nodeCount
    }

    public func rollout(_ reporter: any RolloutReporter = CollectingReporter()) -> Rollout {
        Rollout(config: config, reporter: reporter)
    }

    public var driver: LocalProcessDriver { LocalProcessDriver(stateDirectory: config.stateDirectory) }

    /// Releases of the live instances, by node.
    public func releases() -> [String: [String]] {
        var result: [String: [String]] = [:]
        for node in config.nodes { result[node.name] = driver.instances(node: node.name).filter(\.alive).map(\.release) }
        return result
    }

    public func everyNodeRuns(_ release: String) -> Bool {
        releases().values.allSatisfy { $0 == [release] }
    }

    /// Every proxy backend is ready and belongs to `release`.
    public func proxyServesOnly(_ release: String) -> Bool {
        let backends = proxy.server.pool.list()
        return backends.count == nodeCount && backends.allSatisfy { $0.state == .ready && $0.name.hasSuffix("-\(release)") }
    }

    public func journalEvents() throws -> [RolloutEvent] {
        try DeployJournal(path: config.stateDirectory + "/journal.jsonl").events()
    }

    /// Samples how many backends are ready on the proxy every 10 ms until stopped.
    public func watchReadyCount() -> ReadyWatcher { ReadyWatcher(pool: proxy.server.pool) }

    public func cleanup() async {
        // Every pid file, not only the nodes the fleet began with: a test may add one.
        for instance in driver.allInstances() {
            try? await driver.stop(instance, signal: SIGKILL, grace: .zero)
        }
        try? await proxy.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

public final class ReadyWatcher: Sendable {
    private let minimum = NIOLockedValueBox(Int.max)
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)

    init(pool: BackendPool) {
        let minimum = self.minimum
        task.withLockedValue {
            $0 = Task {
                while !Task.isCancelled {
                    let ready = pool.list().filter { $0.state == .ready }.count
                    minimum.withLockedValue { $0 = min($0, ready) }
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
        }
    }

    /// The fewest ready backends seen.
    public func stop() async -> Int {
        let running = task.withLockedValue { $0 }
        running?.cancel()
        await running?.value
        return minimum.withLockedValue { $0 }
    }
}

/// What an anonymous visitor of TranslateApp does: the page, its script, and logging in (a
/// write). The API behind the login is the probe's business.
public let translateRequests: @Sendable (Int, Int) -> HTTPRequest = { worker, index in
    switch index % 3 {
    case 0: HTTPRequest(.POST, "/login", headers: ["content-type": "application/json"], body: #"{"user":"load-\#(worker)"}"#)
    case 1: HTTPRequest(.GET, "/up")
    default: HTTPRequest(.GET, "/")
    }
}

/// The most nodes out of rotation at once according to the journal: a node leaves at
/// `draining` and returns at `admitted`.
public func maxOutOfRotation(_ events: [RolloutEvent]) -> Int {
    var out = Set<String>()
    var most = 0
    for event in events where event.kind == .step {
        guard let node = event.node else { continue }
        if event.step == .draining { out.insert(node) }
        if event.step == .admitted { out.remove(node) }
        most = max(most, out.count)
    }
    return most
}
