import BatonCore

/// The driver chosen per node: `host: local` nodes run here (`LocalProcessDriver`), `ssh://`
/// nodes on their host (`SSHDriver`). A node baton.yml no longer lists is looked for locally,
/// where `baton node remove` can still find what it left.
public struct FleetDriver: NodeDriver {
    public let local: LocalProcessDriver
    public let ssh: SSHDriver
    private let remoteNodes: Set<String>

    public init(config: BatonConfig) {
        local = LocalProcessDriver(stateDirectory: config.stateDirectory)
        ssh = SSHDriver(nodes: config.nodes, settings: config.ssh)
        remoteNodes = Set(config.nodes.filter { $0.ssh != nil }.map(\.name))
    }

    private func driver(_ node: String) -> any NodeDriver {
        remoteNodes.contains(node) ? ssh : local
    }

    public func ship(release: String, from source: String, to node: String, keep: Int) async throws -> String {
        try await driver(node).ship(release: release, from: source, to: node, keep: keep)
    }

    public func start(node: String, release: String, port: Int, command: String, environment: [String: String]) async throws -> NodeInstance {
        try await driver(node).start(node: node, release: release, port: port, command: command, environment: environment)
    }

    public func instances(node: String) async throws -> [NodeInstance] {
        try await driver(node).instances(node: node)
    }

    public func stop(_ instance: NodeInstance, signal: Int32, grace: Duration) async throws {
        try await driver(instance.node).stop(instance, signal: signal, grace: grace)
    }

    public func freePort(node: String) async throws -> Int {
        try await driver(node).freePort(node: node)
    }

    public func listener(node: String, port: Int) async throws -> PortListener? {
        try await driver(node).listener(node: node, port: port)
    }

    public func logLocation(node: String, release: String) -> String {
        driver(node).logLocation(node: node, release: release)
    }
}
