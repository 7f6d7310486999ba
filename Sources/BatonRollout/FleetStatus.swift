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
        /// Restarts by the supervisor after the release exited by itself.
        public var restarts: Int
        /// Set when the instance is alive but its port is held by another process (which
        /// then answers in its name), or by nobody.
        public var portMismatch: String?
    }

    public struct Node: Codable, Sendable {
        public var name: String
        /// `local`, or the ssh:// target it runs on.
        public var host: String
        public var port: Int
        public var instances: [Instance]
        /// A process holding the node's port that none of its instances is.
        public var foreignListener: String?
        /// Why the node's host could not be asked (its instances are then unknown).
        public var unreachable: String?
    }

    public var service: String
    public var release: String?
    public var interrupted: String?
    /// Who holds the deploy lock right now (a deploy in progress), if anyone.
    public var lockHolder: String?
    /// Where the journal and lock are: a file, or PostgreSQL (without the password).
    public var state: String
    public var nodes: [Node]
    /// Load balancers that could not be asked, with why; the others' states are shown.
    public var unreachable: [String] = []

    public static func gather(_ rollout: Rollout) async throws -> FleetStatus {
        let (backends, unreachable) = await rollout.traffic.survey()
        var nodes: [Node] = []
        for node in rollout.config.nodes {
            var instances: [Instance] = []
            let host = node.ssh?.description ?? "local"
            let recorded: [NodeInstance]
            let nodeListener: PortListener?
            do {
                recorded = try await rollout.driver.instances(node: node.name)
                nodeListener = try await rollout.driver.listener(node: node.name, port: node.port)
            } catch {
                // One host down must not hide the rest of the fleet.
                nodes.append(Node(name: node.name, host: host, port: node.port, instances: [], unreachable: "\(error)"))
                continue
            }
            var foreign: String?
            if let listener = nodeListener, !recorded.contains(where: { $0.alive && listener.isOwned(by: $0) }) {
                foreign = "port \(node.port) is held by \(listener.holder), which Baton did not start"
            }
            for instance in recorded {
                let name = Rollout.backendName(node: node.name, release: instance.release)
                var states: [String: String] = [:]
                for (proxy, list) in backends { states[proxy] = list.first { $0.name == name }?.state.rawValue ?? "absent" }
                var healthy = false
                var mismatch: String?
                if instance.alive {
                    let listener = try await rollout.driver.listener(node: node.name, port: instance.port)
                    if let listener, !listener.isOwned(by: instance) {
                        mismatch = "port \(instance.port) is held by \(listener.holder), not by this instance"
                    } else if listener == nil {
                        mismatch = "nothing listens on port \(instance.port)"
                    }
                    let check = try await rollout.settings(of: instance.release).health.check
                    healthy = await check.check(instance.endpoint, userAgent: "baton-status") == nil
                }
                instances.append(Instance(
                    release: instance.release, pid: instance.pid, port: instance.port,
                    process: instance.alive ? "running" : "dead", healthy: healthy, proxies: states,
                    restarts: instance.restarts, portMismatch: mismatch
                ))
            }
            nodes.append(Node(name: node.name, host: host, port: node.port, instances: instances, foreignListener: foreign))
        }
        let interrupted = try await rollout.journal.interrupted()
        return FleetStatus(
            service: rollout.config.service,
            release: try await rollout.journal.currentRelease(),
            interrupted: interrupted.map { "\($0.id) to \($0.target)" },
            lockHolder: try await rollout.journal.store.lockHolder()?.description,
            state: rollout.journal.store.location,
            nodes: nodes,
            unreachable: unreachable
        )
    }

    /// Aligned text for a person.
    public func render() -> String {
        var lines = ["\(service): \(release.map { "release \($0)" } ?? "never deployed")"]
        if let lockHolder {
            lines.append("DEPLOYING now: \(lockHolder)")
        } else if let interrupted {
            lines.append("INTERRUPTED deployment \(interrupted): run `baton deploy --resume` or `baton rollback`")
        }
        for problem in unreachable { lines.append("UNREACHABLE load balancer: \(problem)") }
        for node in nodes {
            let name = node.name.padding(toLength: 10, withPad: " ", startingAt: 0)
            if node.host != "local" { lines.append("  \(name) on \(node.host)") }
            if let unreachable = node.unreachable {
                lines.append("  \(name) UNREACHABLE: \(unreachable)")
            } else if node.instances.isEmpty {
                lines.append("  \(name) not running")
            }
            for instance in node.instances {
                let proxies = instance.proxies.values.sorted().joined(separator: ",")
                let restarts = instance.restarts > 0 ? "  restarted \(instance.restarts)x" : ""
                lines.append(
                    "  \(name) \(instance.release.padding(toLength: 8, withPad: " ", startingAt: 0)) pid \(String(instance.pid).padding(toLength: 8, withPad: " ", startingAt: 0)) :\(instance.port)  \(instance.process)  \(instance.healthy ? "healthy" : "UNHEALTHY")  proxy: \(proxies.isEmpty ? "-" : proxies)\(restarts)"
                )
                if let mismatch = instance.portMismatch { lines.append("  \(name) MISMATCH: \(mismatch)") }
            }
            if let foreign = node.foreignListener { lines.append("  \(name) MISMATCH: \(foreign)") }
        }
        return lines.joined(separator: "\n")
    }
}
