import BatonCore
import BatonProxy
import Foundation

/// What is running where: each node's instances, their state on every proxy and their health.
public struct FleetStatus: Codable, Sendable {
    public struct Instance: Codable, Sendable {
        public var release: String
        public var pid: Int32
        public var port: Int
        public var process: String
        public var healthy: Bool
        /// Backend state on each proxy (by the proxy's address).
        public var proxies: [String: String]
    }

    public struct Node: Codable, Sendable {
        public var name: String
        public var instances: [Instance]
    }

    public var service: String
    public var release: String?
    public var interrupted: String?
    public var nodes: [Node]

    public static func gather(_ rollout: Rollout) async throws -> FleetStatus {
        let backends = (try? await rollout.traffic.backends()) ?? [:]
        var nodes: [Node] = []
        for node in rollout.config.nodes {
            var instances: [Instance] = []
            for instance in rollout.driver.instances(node: node.name) {
                let name = Rollout.backendName(node: node.name, release: instance.release)
                var states: [String: String] = [:]
                for (proxy, list) in backends { states[proxy] = list.first { $0.name == name }?.state.rawValue ?? "absent" }
                var healthy = false
                if instance.alive {
                    let response = try? await HTTP1Client.send(
                        HTTPRequest(.GET, rollout.config.health.path, headers: ["connection": "close"]),
                        to: .tcp(host: "127.0.0.1", port: instance.port),
                        timeout: rollout.config.health.timeout
                    )
                    healthy = response.map { (200..<400).contains($0.status) } ?? false
                }
                instances.append(Instance(
                    release: instance.release, pid: instance.pid, port: instance.port,
                    process: instance.alive ? "running" : "dead", healthy: healthy, proxies: states
                ))
            }
            nodes.append(Node(name: node.name, instances: instances))
        }
        let interrupted = try rollout.journal.interrupted()
        return FleetStatus(
            service: rollout.config.service,
            release: try rollout.journal.currentRelease(),
            interrupted: interrupted.map { "\($0.id) to \($0.target)" },
            nodes: nodes
        )
    }

    /// Aligned text for a person.
    public func render() -> String {
        var lines = ["\(service): \(release.map { "release \($0)" } ?? "never deployed")"]
        if let interrupted { lines.append("INTERRUPTED deployment \(interrupted): run `baton deploy --resume` or `baton rollback`") }
        for node in nodes {
            if node.instances.isEmpty {
                lines.append("  \(node.name.padding(toLength: 10, withPad: " ", startingAt: 0)) not running")
            }
            for instance in node.instances {
                let proxies = instance.proxies.values.sorted().joined(separator: ",")
                lines.append(
                    "  \(node.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(instance.release.padding(toLength: 8, withPad: " ", startingAt: 0)) pid \(String(instance.pid).padding(toLength: 8, withPad: " ", startingAt: 0)) :\(instance.port)  \(instance.process)  \(instance.healthy ? "healthy" : "UNHEALTHY")  proxy: \(proxies.isEmpty ? "-" : proxies)"
                )
            }
        }
        return lines.joined(separator: "\n")
    }
}
