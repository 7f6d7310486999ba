import BatonCore

/// Starting an instance and deciding it may take traffic: health checks within the startup
/// grace, the port owned by the instance just started, then admission on every load balancer.
extension Rollout {
    func startAndWarm(
        _ node: BatonConfig.Node, release: String, settings: ReleaseSettings, port: Int, existing: NodeInstance?, deployment: String
    ) async throws -> NodeInstance {
        let instance: NodeInstance
        if let existing {
            instance = existing
        } else {
            if let listener = try await driver.listener(node: node.name, port: port) {
                throw RolloutFailure(message: "\(node.name): cannot start \(release): port \(port) is in use by \(listener.holder)")
            }
            try await step(deployment, node, .starting, release, "port \(port)")
            let command = settings.release.start
                .replacingOccurrences(of: "{release}", with: release)
                .replacingOccurrences(of: "{port}", with: String(port))
                .replacingOccurrences(of: "{node}", with: node.name)
                .replacingOccurrences(of: "{dir}", with: try await driver.ship(release: release, from: releases.path(of: release), to: node.name, keep: settings.release.keep))
            instance = try await driver.start(node: node.name, release: release, port: port, command: command, environment: settings.release.environment)
        }
        try await step(deployment, node, .warming, release, "pid \(instance.pid) on :\(instance.port)")
        try await waitHealthy(instance, health: settings.health)
        return instance
    }

    /// Adds the instance on every proxy with the release's health check, so the proxies check
    /// exactly what the warm-up checked.
    func admit(_ node: BatonConfig.Node, _ instance: NodeInstance, health: BatonConfig.Health, deployment: String) async throws {
        let backend = Self.backendName(node: node.name, release: instance.release)
        try await step(deployment, node, .admitting, instance.release, backend)
        do {
            try await traffic.admit(backend: backend, address: instance.endpoint.description, release: instance.release, health: health.check, timeout: health.startupGrace)
        } catch {
            throw RolloutFailure(message: "\(node.name): the proxy did not admit \(backend): \(error)")
        }
        try await step(deployment, node, .admitted, instance.release, backend)
    }

    /// Rise consecutive passing checks within the startup grace, then healthy for min_ready.
    func waitHealthy(_ instance: NodeInstance, health: BatonConfig.Health) async throws {
        let endpoint = instance.endpoint
        let check = health.check
        let start = ContinuousClock.now
        var passes = 0
        var healthySince: ContinuousClock.Instant?
        var lastProblem = "no answer yet"
        let log = driver.logLocation(node: instance.node, release: instance.release)
        // Whether it is still the process just started: asked at most twice a second (on a
        // remote node each ask is an SSH round trip), and once more before it counts as ready.
        func stillRunning() async throws {
            let seen = try await driver.instances(node: instance.node).first { $0.pid == instance.pid }
            guard let seen, seen.alive, seen.restarts == instance.restarts else {
                let status = seen?.lastExit.map { " with status \($0)" } ?? ""
                throw RolloutFailure(message: "\(instance.node): release \(instance.release) exited while starting\(status); see \(log)")
            }
        }
        var lookedAt = ContinuousClock.now - .seconds(1)
        while ContinuousClock.now - start < health.startupGrace {
            if ContinuousClock.now - lookedAt >= .milliseconds(500) {
                lookedAt = .now
                try await stillRunning()
            }
            if let failure = await check.check(endpoint, userAgent: "baton-deploy") {
                passes = 0
                lastProblem = failure
            } else {
                passes += 1
            }
            if passes >= check.rise {
                healthySince = healthySince ?? .now
                if ContinuousClock.now - healthySince! >= health.minReady {
                    try await stillRunning()
                    try await confirmListener(instance)
                    return
                }
            } else {
                healthySince = nil
            }
            try await Task.sleep(for: check.interval)
        }
        throw RolloutFailure(
            message: "\(instance.node): release \(instance.release) did not become healthy within \(health.startupGrace.shortDescription) (\(lastProblem))"
        )
    }

    /// The checks passed; they count only if they reached the instance just started, not a
    /// stale server on its port (whose answers would be admitted in the new release's name).
    func confirmListener(_ instance: NodeInstance) async throws {
        let listener = try await driver.listener(node: instance.node, port: instance.port)
        guard let listener, listener.isOwned(by: instance) else {
            let who = listener.map { "\($0.holder) answers there" } ?? "nothing listens there"
            throw RolloutFailure(message: "\(instance.node): release \(instance.release) (pid \(instance.pid)) does not own port \(instance.port): \(who)")
        }
    }
}
