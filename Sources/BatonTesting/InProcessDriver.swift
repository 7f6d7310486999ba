import BatonCore
import BatonRollout
import Foundation
import Synchronization

/// A `NodeDriver` for fast rollout tests: each instance is an in-process `WorkerBackend` on the
/// port the rollout asks for (no process is spawned, the command is not run), with a made-up
/// pid that owns its port. Ports held by anything else are seen as they are (`PortListener`).
/// Releases named in `unhealthy` start but fail their health checks.
public final class InProcessDriver: NodeDriver {
    private struct Running {
        var instance: NodeInstance
        var backend: WorkerBackend
    }

    private struct State {
        var running: [Running] = []
        /// Made-up pids, far above what Linux hands out by default.
        var nextPid: Int32 = 4_000_000
    }

    private let state = Mutex(State())
    private let unhealthy: Set<String>

    public init(unhealthy: Set<String> = []) {
        self.unhealthy = unhealthy
    }

    public func ship(release: String, from source: String, to node: String, keep: Int) async throws -> String {
        source
    }

    public func logLocation(node: String, release: String) -> String {
        "in-process \(node)-\(release)"
    }

    public func start(node: String, release: String, port: Int, command: String, environment: [String: String]) async throws -> NodeInstance {
        // WorkerBackend's listener is a plain NIO server: health checks keep connecting while an
        // instance stops, and an async-channel listener traps on a connection accepted as it closes.
        let backend = try await WorkerBackend.start(name: "\(node)-\(release)", workers: 16, port: port)
        if unhealthy.contains(release) { backend.setHealthy(false) }
        return state.withLock { (current: inout State) -> NodeInstance in
            current.nextPid += 1
            let instance = NodeInstance(node: node, release: release, pid: current.nextPid, port: backend.port, alive: true)
            current.running.append(Running(instance: instance, backend: backend))
            return instance
        }
    }

    public func instances(node: String) -> [NodeInstance] {
        state.withLock { $0.running.map(\.instance).filter { $0.node == node } }
    }

    public func stop(_ instance: NodeInstance, signal: Int32, grace: Duration) async throws {
        let stopped = state.withLock { (current: inout State) -> WorkerBackend? in
            guard let index = current.running.firstIndex(where: { $0.instance.pid == instance.pid }) else { return nil }
            return current.running.remove(at: index).backend
        }
        await stopped?.stop()
    }

    public func freePort(node: String) throws -> Int {
        try LocalPort.free()
    }

    public func listener(node: String, port: Int) async throws -> PortListener? {
        if let owner = state.withLock({ $0.running.first { $0.instance.port == port }?.instance }) {
            return PortListener(port: port, pids: [owner.pid], sessions: [owner.pid], command: "in-process \(owner.node)-\(owner.release)")
        }
        return PortListener.local(port: port)
    }

    /// Stops every instance still running.
    public func stopAll() async {
        let all = state.withLock { (current: inout State) -> [WorkerBackend] in
            defer { current.running.removeAll() }
            return current.running.map(\.backend)
        }
        for backend in all { await backend.stop() }
    }
}
