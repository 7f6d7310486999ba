import BatonCore
import NIOCore

/// Active health checks: every backend is checked by its own `HealthCheck` (what the deploy
/// that added it sent, else the proxy's default) until it leaves the pool. Results feed each
/// backend's state machine through the pool, with the reason of each failure.
struct HealthChecker: Sendable {
    let pool: BackendPool
    let group: any EventLoopGroup

    /// Checks every backend the pool has or gets until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await backend in pool.addedBackends {
                group.addTask { await check(backend) }
            }
        }
    }

    private func check(_ backend: Backend) async {
        let endpoint = Endpoint.tcp(host: backend.host, port: backend.port)
        while !Task.isCancelled && pool.isMember(backend) {
            let failure = await backend.healthCheck.check(endpoint, userAgent: "baton-health", group: group)
            // A check cut short by the proxy's shutdown says nothing about the backend.
            if Task.isCancelled { return }
            pool.healthCheckResult(backend, failure: failure)
            try? await Task.sleep(for: backend.healthCheck.interval)
        }
    }
}
