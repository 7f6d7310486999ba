import BatonCore
import BatonProxy

/// Every load balancer in baton.yml's `proxies` driven in lockstep: `baton proxy` instances
/// through their admin API, HAProxy through its Runtime API. A step completes only when every
/// one of them has done it; one that cannot be reached fails the step.
public struct LoadBalancers: TrafficController {
    public let members: [any TrafficController]

    public init(_ members: [any TrafficController]) {
        self.members = members
    }

    /// The controllers for baton.yml's `proxies`: one for all the `baton proxy` instances, one
    /// per HAProxy backend.
    public init(targets: [BatonConfig.ProxyTarget]) {
        var batonProxies: [AdminClient] = []
        var members: [any TrafficController] = []
        for target in targets {
            switch target {
            case .socket(let path): batonProxies.append(AdminClient(endpoint: .unix(path: path)))
            case .tcp(let endpoint, let token): batonProxies.append(AdminClient(endpoint: endpoint, token: token))
            case .haproxy(let socket, let backend): members.append(HAProxyController(runtime: HAProxyRuntime(endpoint: socket), backend: backend))
            }
        }
        if !batonProxies.isEmpty { members.insert(BatonProxyController(proxies: batonProxies), at: 0) }
        self.init(members)
    }

    public func admit(backend: String, address: String, release: String?, health: HealthCheck, timeout: Duration) async throws {
        try await everyMember { try await $0.admit(backend: backend, address: address, release: release, health: health, timeout: timeout) }
    }

    public func drain(backend: String, timeout: Duration) async throws -> [DrainResult] {
        try await everyMember { try await $0.drain(backend: backend, timeout: timeout) }.flatMap { $0 }
    }

    public func remove(backend: String) async throws {
        try await everyMember { try await $0.remove(backend: backend) }
    }

    public func backends() async throws -> [String: [BackendInfo]] {
        try await everyMember { try await $0.backends() }.reduce(into: [:]) { $0.merge($1) { first, _ in first } }
    }

    public func survey() async -> (backends: [String: [BackendInfo]], unreachable: [String]) {
        // Each member's survey never throws, so neither does running them all.
        let parts = (try? await everyMember { await $0.survey() }) ?? []
        return parts.reduce(into: (backends: [:], unreachable: [])) { total, part in
            total.backends.merge(part.backends) { first, _ in first }
            total.unreachable += part.unreachable
        }
    }

    public func stats() async throws -> [String: BackendStats] {
        try await everyMember { try await $0.stats() }.reduce(into: [:]) { total, part in
            for (name, stats) in part { total[name, default: BackendStats()].add(stats) }
        }
    }

    /// Runs `body` on every member at once; the results in member order.
    private func everyMember<Result: Sendable>(_ body: @escaping @Sendable (any TrafficController) async throws -> Result) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            for (index, member) in members.enumerated() { group.addTask { (index, try await body(member)) } }
            var results: [(Int, Result)] = []
            for try await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}
