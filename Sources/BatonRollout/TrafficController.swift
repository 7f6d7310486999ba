import BatonCore
import BatonProxy

/// What the rollout asks of the load balancers in front of the nodes.
public protocol TrafficController: Sendable {
    /// Adds a backend running `release` on every proxy, checked by `health`; returns once every
    /// proxy has it ready.
    func admit(backend: String, address: String, release: String?, health: HealthCheck, timeout: Duration) async throws
    /// Drains a backend on every proxy at once; returns when all are drained.
    func drain(backend: String, timeout: Duration) async throws -> [DrainResult]
    /// Removes a backend from every proxy that has it.
    func remove(backend: String) async throws
    /// Each proxy's backends, keyed by the proxy's description.
    func backends() async throws -> [String: [BackendInfo]]
    /// What each backend served so far, summed over every load balancer, by backend name.
    func stats() async throws -> [String: BackendStats]
    /// `backends()` of every load balancer that answered, and why each other one did not
    /// (`baton status` shows what it can).
    func survey() async -> (backends: [String: [BackendInfo]], unreachable: [String])
}

extension TrafficController {
    public func admit(backend: String, address: String, health: HealthCheck, timeout: Duration) async throws {
        try await admit(backend: backend, address: address, release: nil, health: health, timeout: timeout)
    }

    public func survey() async -> (backends: [String: [BackendInfo]], unreachable: [String]) {
        do {
            return (try await backends(), [])
        } catch {
            return ([:], ["\(error)"])
        }
    }
}

/// Drives one or more `baton proxy` instances through their admin API.
public struct BatonProxyController: TrafficController {
    public let proxies: [AdminClient]

    public init(proxies: [AdminClient]) {
        self.proxies = proxies
    }

    public func admit(backend: String, address: String, release: String?, health: HealthCheck, timeout: Duration) async throws {
        try await everyProxy { proxy in
            if let existing = try? await proxy.backend(backend) {
                switch existing.state {
                case .ready: return
                case .draining, .drained:
                    _ = try await proxy.markReady(backend)
                    return
                default:
                    try await proxy.remove(backend)
                }
            }
            _ = try await proxy.add(name: backend, address: address, release: release, health: health, wait: true, timeout: timeout)
        }
    }

    public func drain(backend: String, timeout: Duration) async throws -> [DrainResult] {
        try await withThrowingTaskGroup(of: DrainResult?.self) { group in
            for proxy in proxies {
                group.addTask {
                    do {
                        return try await proxy.drain(backend, timeout: timeout)
                    } catch let error as BatonError where error.code == .notFound {
                        return nil
                    }
                }
            }
            var results: [DrainResult] = []
            for try await result in group { if let result { results.append(result) } }
            return results
        }
    }

    public func remove(backend: String) async throws {
        try await everyProxy { proxy in
            do {
                try await proxy.remove(backend)
            } catch let error as BatonError where error.code == .notFound {}
        }
    }

    public func backends() async throws -> [String: [BackendInfo]] {
        var result: [String: [BackendInfo]] = [:]
        for proxy in proxies { result[proxy.endpoint.description] = try await proxy.list() }
        return result
    }

    public func stats() async throws -> [String: BackendStats] {
        var result: [String: BackendStats] = [:]
        for proxy in proxies {
            for backend in try await proxy.list() { result[backend.name, default: BackendStats()].add(backend.stats ?? BackendStats()) }
        }
        return result
    }

    private func everyProxy(_ body: @escaping @Sendable (AdminClient) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for proxy in proxies { group.addTask { try await body(proxy) } }
            try await group.waitForAll()
        }
    }
}
