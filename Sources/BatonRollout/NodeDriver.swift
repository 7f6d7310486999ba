import BatonCore

/// One running (or dead) instance of a release on a node.
public struct NodeInstance: Sendable, Equatable, Codable {
    public var node: String
    public var release: String
    /// The address the instance is reached at: its node's host (loopback for a local node).
    public var host: String = "127.0.0.1"
    /// The supervisor's pid, which is also its session and process group.
    public var pid: Int32
    public var port: Int
    public var alive: Bool
    /// Times the supervisor restarted the release after it exited by itself.
    public var restarts: Int = 0
    /// The exit status of the last run that ended, when one did.
    public var lastExit: Int32?

    public init(
        node: String, release: String, host: String = "127.0.0.1", pid: Int32, port: Int, alive: Bool,
        restarts: Int = 0, lastExit: Int32? = nil
    ) {
        self.node = node
        self.release = release
        self.host = host
        self.pid = pid
        self.port = port
        self.alive = alive
        self.restarts = restarts
        self.lastExit = lastExit
    }

    /// Where health checks, load balancers and hooks reach the instance.
    public var endpoint: Endpoint { .tcp(host: host, port: port) }
}

/// How releases reach a node and are started and stopped there. Every call is idempotent
/// (it checks what is there before acting), so `--resume` can run any of them again.
/// Instances run under `Supervisor`, which restarts a crashed release.
public protocol NodeDriver: Sendable {
    /// Makes release `release` (the directory `source` here) available on `node` and returns
    /// the directory it runs from there (`{dir}`). A copy already there and verified is not
    /// sent again; the node keeps `keep` releases, never one an instance of it runs.
    func ship(release: String, from source: String, to node: String, keep: Int) async throws -> String
    /// Starts `command` for `release` on `node`, listening on `port`; returns once it is spawned.
    func start(node: String, release: String, port: Int, command: String, environment: [String: String]) async throws -> NodeInstance
    /// Every instance recorded for the node, alive or not.
    func instances(node: String) async throws -> [NodeInstance]
    /// Sends `signal`, waits up to `grace`, then kills. Forgets the instance.
    func stop(_ instance: NodeInstance, signal: Int32, grace: Duration) async throws
    /// A port on the node nobody listens on (for a surge instance).
    func freePort(node: String) async throws -> Int
    /// Who listens on `port` on the node right now; nil when nobody does.
    func listener(node: String, port: Int) async throws -> PortListener?
    /// Where an instance's output goes, for messages.
    func logLocation(node: String, release: String) -> String
}
