import BatonCore
import BatonProxy
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// The orchestrator end to end in a second or two: nodes are in-process backends
/// (`InProcessDriver`) behind a real `baton proxy` (`LiveProxy`), so the rollout's ordering,
/// journal and rollback are tested without spawning a process.
@Suite(.serialized) struct InProcessRolloutTests {
    struct Fleet {
        let rollout: Rollout
        let proxy: LiveProxy
        let driver: InProcessDriver
        let nodes: [String]

        func runs(_ release: String) -> Bool {
            nodes.allSatisfy { node in driver.instances(node: node).map(\.release) == [release] }
        }

        func proxyServesOnly(_ release: String) -> Bool {
            let backends = proxy.server.pool.list()
            return backends.count == nodes.count && backends.allSatisfy { $0.state == .ready && $0.name.hasSuffix("-\(release)") }
        }

        func stop() async throws {
            await driver.stopAll()
            try await proxy.shutdown()
        }
    }

    func fleet(nodes count: Int, unhealthy: Set<String> = []) async throws -> Fleet {
        let directory = TemporaryDirectory.make(prefix: "baton-fast")
        let proxy = try await LiveProxy.start(directory: directory + "/proxy")
        let nodes = (1...count).map { "web\($0)" }
        let lines = try nodes.map { "  - { name: \($0), port: \(try LocalPort.free()) }" }.joined(separator: "\n")
        let yaml = """
            service: fast
            proxies:
              - admin_socket: \(directory)/proxy/admin.sock
            nodes:
            \(lines)
            release:
              start: "{dir}/run {port}"
            health:
              interval: 20ms
              rise: 1
              min_ready: 0s
              startup_grace: 1s
            rollout:
              max_unavailable: 1
              observe: 0s
              drain_timeout: 2s
            """
        try yaml.write(toFile: directory + "/baton.yml", atomically: true, encoding: .utf8)
        let config = try BatonConfig.load(path: directory + "/baton.yml")
        for release in ["A", "B"] {
            let artifact = "\(directory)/artifacts/\(release)"
            try FileManager.default.createDirectory(atPath: artifact, withIntermediateDirectories: true)
            try "release \(release)\n".write(toFile: artifact + "/run", atomically: true, encoding: .utf8)
            _ = try ReleaseStore(stateDirectory: config.stateDirectory).add(source: artifact, id: release, keep: 5, protected: [])
        }
        let driver = InProcessDriver(unhealthy: unhealthy)
        return Fleet(rollout: Rollout(config: config, driver: driver, reporter: CollectingReporter()), proxy: proxy, driver: driver, nodes: nodes)
    }

    @Test func deploysFromNothingThenUpgradesEveryNode() async throws {
        let fleet = try await fleet(nodes: 4)
        try await fleet.rollout.deploy(release: "A", resume: false)
        #expect(fleet.runs("A"))
        #expect(fleet.proxyServesOnly("A"))
        try await fleet.rollout.deploy(release: "B", resume: false)
        #expect(fleet.runs("B"))
        #expect(fleet.proxyServesOnly("B"))
        #expect(try await fleet.rollout.journal.currentRelease() == "B")
        // Deploying the release every node runs changes nothing.
        try await fleet.rollout.deploy(release: "B", resume: false)
        #expect(fleet.runs("B"))
        try await fleet.stop()
    }

    @Test func statusShowsWhatItCanWhenALoadBalancerIsUnreachable() async throws {
        let fleet = try await fleet(nodes: 2)
        try await fleet.rollout.deploy(release: "A", resume: false)
        let config = fleet.rollout.config
        let withGone = Rollout(
            config: config, driver: fleet.driver,
            traffic: LoadBalancers(targets: config.proxies + [.haproxy(socket: .unix(path: "/tmp/baton-gone-haproxy.sock"), backend: "app")])
        )
        let status = try await FleetStatus.gather(withGone)
        #expect(status.nodes.allSatisfy { $0.instances.count == 1 && $0.instances[0].proxies.values.first == "ready" })
        #expect(status.unreachable.count == 1)
        #expect(status.render().contains("UNREACHABLE load balancer: HAProxy runtime API at unix:/tmp/baton-gone-haproxy.sock"))
        try await fleet.stop()
    }

    @Test func anUnhealthyReleaseIsRolledBackOnEveryNodeItReached() async throws {
        let fleet = try await fleet(nodes: 3, unhealthy: ["B"])
        try await fleet.rollout.deploy(release: "A", resume: false)
        await #expect(throws: RolloutFailure.self) { try await fleet.rollout.deploy(release: "B", resume: false) }
        #expect(fleet.runs("A"))
        #expect(fleet.proxyServesOnly("A"))
        #expect(try await fleet.rollout.journal.currentRelease() == "A")
        #expect(try await fleet.rollout.journal.deployments().last?.rollingBack == true)
        try await fleet.stop()
    }
}
