import BatonCore
import NIOCore
import NIOHTTP1

/// Active health checks: a GET on the configured path of every backend, every interval, with a
/// timeout. A 2xx or 3xx passes. Results feed each backend's state machine through the pool.
struct HealthChecker: Sendable {
    let pool: BackendPool
    let configuration: HealthCheckConfiguration
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
        let request = HTTPRequest(.GET, configuration.path, headers: ["connection": "close", "user-agent": "baton-health"])
        while !Task.isCancelled && pool.isMember(backend) {
            let passed: Bool
            do {
                let response = try await withTimeout(configuration.timeout, operation: "health check of \(backend.name)") {
                    try await HTTP1Client.withConnection(to: endpoint, connectTimeout: configuration.timeout, group: group) {
                        try await $0.send(request)
                    }
                }
                passed = (200..<400).contains(response.status)
            } catch {
                passed = false
            }
            pool.healthCheckResult(backend, passed: passed)
            try? await Task.sleep(for: configuration.interval)
        }
    }
}
