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
    /// The first of `proxies`.
    public let proxy: LiveProxy
    public let proxies: [LiveProxy]
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
        haproxy: LiveHAProxy? = nil,
        hosts: NamespaceHosts? = nil,
        proxies proxyCount: Int = 1,
        payload: Int = 0
    ) async throws -> TestFleet {
        let directory = TemporaryDirectory.make(prefix: "baton-deploy")
        // The proxy's own check is only for backends added by hand: a deploy sends baton.yml's.
        var proxies: [LiveProxy] = []
        for index in 0..<proxyCount {
            proxies.append(try await LiveProxy.start(directory: directory + (index == 0 ? "/proxy" : "/proxy\(index + 1)")) {
                $0.healthCheck = HealthCheck(path: proxyHealthPath, interval: .milliseconds(50), timeout: .milliseconds(500), rise: 1, fall: 2)
            })
        }
        var app = try BuiltProducts.path("TranslateApp")
        if let hosts {
            // The hosts' users run it: a copy where every user may read it.
            let copy = hosts.directory + "/bin/TranslateApp"
            if !FileManager.default.fileExists(atPath: copy) {
                try FileManager.default.createDirectory(atPath: hosts.directory + "/bin", withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: app, toPath: copy)
                chmod(copy, 0o755)
            }
            app = copy
        }
        for release in ["5.3", "5.4"] {
            let artifact = "\(directory)/artifacts/\(release)"
            try FileManager.default.createDirectory(atPath: artifact, withIntermediateDirectories: true)
            let fault = faults[release].map { "TRANSLATE_FAULT='\($0)' " } ?? ""
            try "#!/bin/sh\n\(fault)exec '\(app)' \"$@\"\n".write(toFile: "\(artifact)/run", atomically: true, encoding: .utf8)
            chmod("\(artifact)/run", 0o755)
            try openapi[release]?.write(toFile: "\(artifact)/openapi.yaml", atomically: true, encoding: .utf8)
            if payload > 0 {
                // Something to ship, as a real release has: incompressible bytes.
                let bytes = (0..<payload / 8).map { _ in UInt64.random(in: 0...UInt64.max) }
                try bytes.withUnsafeBytes { Data($0) }.write(to: URL(fileURLWithPath: "\(artifact)/payload.bin"))
            }
        }
        let driver = LocalProcessDriver(stateDirectory: directory)
        var nodeLines = try (1...nodes).map { "  - { name: web\($0), port: \(try driver.freePort(node: "web\($0)")) }" }.joined(separator: "\n")
        var sshSection = ""
        if let hosts {
            // The same port on every host, as on a real fleet.
            nodeLines = hosts.hosts.enumerated().map { "  - { name: web\($0.offset + 1), host: ssh://\($0.element.user)@\($0.element.address), port: 3000 }" }
                .joined(separator: "\n")
            sshSection = "ssh:\n  identity_file: \(hosts.identityFile)\n  known_hosts: \(hosts.knownHosts)\n  connect_timeout: 2s"
        }
        let yaml = """
            service: translate
            state_dir: .baton
            proxies:
            \(proxies.map { "  - admin_socket: \($0.directory)/admin.sock" }.joined(separator: "\n"))
            \(haproxy.map { "  - haproxy: { socket: \($0.socket), backend: \($0.backend) }" } ?? "")
            nodes:
            \(nodeLines)
            \(sshSection)
            release:
              start: "{dir}/run --release {release} --port {port}\(hosts == nil ? "" : " --host 0.0.0.0")"
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
        return TestFleet(directory: directory, proxies: proxies, configPath: configPath, config: config, nodeCount: hosts?.hosts.count ?? nodes)
    }

    private init(directory: String, proxies: [LiveProxy], configPath: String, config: BatonConfig, nodeCount: Int) {
        self.directory = directory
        self.proxy = proxies[0]
        self.proxies = proxies
        self.configPath = configPath
        self.config = config
        self.nodeCount = nodeCount
    }

    public func rollout(_ reporter: any RolloutReporter = CollectingReporter()) -> Rollout {
        Rollout(config: config, reporter: reporter)
    }

    public var driver: LocalProcessDriver { LocalProcessDriver(stateDirectory: config.stateDirectory) }

    /// Releases of the live instances, by node (on their hosts, for ssh:// nodes).
    public func releases() async throws -> [String: [String]] {
        let driver = FleetDriver(config: config)
        var result: [String: [String]] = [:]
        for node in config.nodes { result[node.name] = try await driver.instances(node: node.name).filter(\.alive).map(\.release) }
        return result
    }

    public func everyNodeRuns(_ release: String) async throws -> Bool {
        try await releases().values.allSatisfy { $0 == [release] }
    }

    /// On every proxy, every backend is ready and belongs to `release`.
    public func proxyServesOnly(_ release: String) -> Bool {
        proxies.allSatisfy { proxy in
            let backends = proxy.server.pool.list()
            return backends.count == nodeCount && backends.allSatisfy { $0.state == .ready && $0.name.hasSuffix("-\(release)") }
        }
    }

    public func journalEvents() async throws -> [RolloutEvent] {
        try await DeployJournal(path: config.stateDirectory + "/journal.jsonl").events()
    }

    /// Samples how many backends are ready on the proxy every 10 ms until stopped.
    public func watchReadyCount() -> ReadyWatcher { ReadyWatcher(pool: proxy.server.pool) }

    public func cleanup() async {
        // Every pid file, not only the nodes the fleet began with: a test may add one.
        for instance in driver.allInstances() {
            try? await driver.stop(instance, signal: SIGKILL, grace: .zero)
        }
        for proxy in proxies { try? await proxy.shutdown() }
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
