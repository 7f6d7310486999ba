import BatonCore

extension Rollout {
    /// What `deploy` would do, in order, without doing it.
    public func plan(release: String) async throws -> DeployPlan {
        let surge = config.rollout.maxSurge > 0
        var machine = RolloutStateMachine(
            nodes: config.nodes.map(\.name), batchSize: surge ? config.rollout.maxSurge : config.rollout.maxUnavailable,
            canary: config.rollout.canary, observes: config.rollout.observe > .zero, pauses: config.rollout.pause > .zero
        )
        let current = try await journal.currentRelease() ?? "nothing"
        var lines = ["deploy \(release) (fleet runs \(current)); \(surge ? "surge \(config.rollout.maxSurge)" : "max_unavailable \(config.rollout.maxUnavailable)"), canary \(config.rollout.canary)"]
        let problems = try await portProblems(config.nodes.map(\.name))
        if !problems.isEmpty { return DeployPlan(steps: lines, refusals: problems) }
        if let hook = config.hooks.preDeploy { lines.append("run pre_deploy: \(hook)") }
        var action = machine.start()
        while true {
            switch action {
            case .upgrade(let nodes):
                for name in nodes {
                    let node = config.nodes.first { $0.name == name }!
                    let steps = surge
                        ? "start \(release) on a spare port, health (GET \(config.health.check.path), rise \(config.health.check.rise), min ready \(config.health.minReady.shortDescription)), admit, drain old (≤ \(config.rollout.drainTimeout.shortDescription)), stop old"
                        : "drain (≤ \(config.rollout.drainTimeout.shortDescription)), stop (\(config.release.stopGrace.shortDescription) grace), start \(release) on :\(node.port), health (GET \(config.health.check.path), rise \(config.health.check.rise), min ready \(config.health.minReady.shortDescription)), admit"
                    lines.append("  \(name): \(steps)")
                }
                action = machine.batchSucceeded()
            case .observe(let nodes):
                lines.append("observe \(nodes.joined(separator: ", ")) for \(config.rollout.observe.shortDescription): roll back all upgraded nodes if 5xx > \(config.rollout.maxErrorRate * 100)%\(config.rollout.maxP99.map { " or p99 > \($0.shortDescription)" } ?? "")")
                action = machine.observeSucceeded()
            case .pause:
                lines.append("pause \(config.rollout.pause.shortDescription)")
                action = machine.pauseElapsed()
            case .finished:
                if let hook = config.hooks.postDeploy { lines.append("run post_deploy: \(hook)") }
                return DeployPlan(steps: lines, refusals: [])
            case .rollback, .failed:
                return DeployPlan(steps: lines, refusals: [])
            }
        }
    }
}
