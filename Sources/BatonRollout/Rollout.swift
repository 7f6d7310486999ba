import BatonCompat
import BatonCore
import BatonProxy
import Foundation

/// Why a deployment stopped; the message is the one line the CLI prints.
public struct RolloutFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// The orchestrator: drains, upgrades, health-checks and re-admits nodes in the order
/// `RolloutStateMachine` gives, observes each batch, rolls back on failure, and journals every
/// step first. Every node step checks what is really there before acting, so running a
/// deployment again (`--resume`) only does what is left.
public struct Rollout: Sendable {
    public let config: BatonConfig
    public let driver: any NodeDriver
    public let traffic: any TrafficController
    public let journal: DeployJournal
    public let releases: ReleaseStore
    public let reporter: any RolloutReporter

    public init(
        config: BatonConfig,
        driver: (any NodeDriver)? = nil,
        traffic: (any TrafficController)? = nil,
        reporter: any RolloutReporter = PlainReporter()
    ) {
        self.config = config
        self.driver = driver ?? LocalProcessDriver(stateDirectory: config.stateDirectory)
        self.traffic = traffic ?? BatonProxyController(targets: config.proxies)
        self.journal = DeployJournal(path: config.stateDirectory + "/journal.jsonl")
        self.releases = ReleaseStore(stateDirectory: config.stateDirectory)
        self.reporter = reporter
    }

    /// The proxy backend name of a node's instance of a release.
    public static func backendName(node: String, release: String) -> String { "\(node)-\(release)" }

    // MARK: Commands

    /// Upgrades every node to `release`; with `resume`, finishes the interrupted deployment.
    public func deploy(release requested: String?, resume: Bool, force: Bool = false) async throws {
        let lock = try DeployLock.acquire(stateDirectory: config.stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        if let interrupted = try journal.interrupted() {
            guard resume else {
                let step = interrupted.lastStep.map { " at \($0.node ?? "?") (\($0.step?.rawValue ?? "?"))" } ?? ""
                throw RolloutFailure(
                    message: "deployment \(interrupted.id) to \(interrupted.target) was interrupted\(step); run `baton deploy --resume` to finish it or `baton rollback` to return to \(interrupted.previous ?? "the previous release")"
                )
            }
            if let requested, requested != interrupted.target, !interrupted.isRollback {
                throw RolloutFailure(message: "--resume: the interrupted deployment targets \(interrupted.target), not \(requested)")
            }
            emit(RolloutEvent(deployment: interrupted.id, kind: .message, detail: "resuming \(interrupted.id) to \(interrupted.target)"))
            try await run(interrupted)
            return
        }
        guard !resume else { throw RolloutFailure(message: "--resume: no interrupted deployment to resume") }
        guard let release = requested else { throw RolloutFailure(message: "which release? e.g. baton deploy 5.4") }
        guard releases.exists(release) else {
            throw RolloutFailure(message: "release \(release) is not in \(releases.directory); add it with `baton release add DIR --id \(release)`")
        }
        try checkCompatibility(to: release, force: force)
        if let hook = config.hooks.preDeploy { try await runHook(hook, name: "pre_deploy", environment: ["BATON_RELEASE": release]) }
        let deployment = try begin(target: release, isRollback: false)
        try await run(deployment)
    }

    /// The pre-flight: when the running and the new release both ship their OpenAPI document,
    /// old and new servers will call each other during the rollout, so both directions must
    /// hold. ERR findings (or an unreadable document) refuse the deploy unless `force`.
    private func checkCompatibility(to release: String, force: Bool) throws {
        guard let current = try journal.currentRelease(), current != release else { return }
        let (old, new) = (releases.path(of: current) + "/" + config.compat.openapi, releases.path(of: release) + "/" + config.compat.openapi)
        guard FileManager.default.fileExists(atPath: old), FileManager.default.fileExists(atPath: new) else { return }
        let say = { (text: String) in self.emit(RolloutEvent(deployment: "preflight", kind: .message, detail: text)) }
        let report: CompatReport
        do {
            report = CompatReport(kind: .api, title: "openapi \(current) → \(release)", findings: OpenAPICompat.compare(old: try OpenAPILoader.load(path: old), new: try OpenAPILoader.load(path: new)))
        } catch let error as BatonError {
            guard force else { throw RolloutFailure(message: "compat pre-flight: \(error.description); fix the document or deploy with --force") }
            return say("compat pre-flight skipped (--force): \(error.description)")
        }
        say("compat openapi \(current) → \(release): \(report.verdict)")
        guard report.incompatible else { return }
        let errors = report.findings.filter { $0.level == .err }
        let first = errors[0]
        let summary = "\(errors.count) ERR finding\(errors.count == 1 ? "" : "s"), first: \(first.direction.rawValue) \(first.id) \(first.operation): \(first.message)"
        guard force else {
            throw RolloutFailure(message: "release \(release) is not compatible with \(current): \(summary); see `baton compat openapi \(old) \(new)`, or deploy with --force")
        }
        say("deploying anyway (--force): \(summary)")
    }

    /// Returns every node to `release` (default: the release before the current or interrupted
    /// deployment), without canary or observe windows.
    public func rollback(to requested: String?) async throws {
        let lock = try DeployLock.acquire(stateDirectory: config.stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        let deployments = try journal.deployments()
        let interrupted = try journal.interrupted()
        let target: String
        if let requested {
            target = requested
        } else if let interrupted {
            guard let previous = interrupted.isRollback ? interrupted.target : interrupted.previous else {
                throw RolloutFailure(message: "the interrupted deployment had no previous release; name one: baton rollback RELEASE")
            }
            target = previous
        } else if let last = deployments.last(where: { $0.finished }), let previous = last.previous {
            target = previous
        } else {
            throw RolloutFailure(message: "nothing to roll back to: no earlier release in the journal; name one: baton rollback RELEASE")
        }
        guard releases.exists(target) else { throw RolloutFailure(message: "release \(target) is not in \(releases.directory)") }
        if let interrupted {
            try journal.append(RolloutEvent(deployment: interrupted.id, kind: .failed, detail: "abandoned for a rollback to \(target)"))
        }
        let deployment = try begin(target: target, isRollback: true)
        try await run(deployment)
    }

    /// What `deploy` would do, in order, without doing it.
    public func plan(release: String) throws -> [String] {
        let surge = config.rollout.maxSurge > 0
        var machine = RolloutStateMachine(
            nodes: config.nodes.map(\.name), batchSize: surge ? config.rollout.maxSurge : config.rollout.maxUnavailable,
            canary: config.rollout.canary, observes: config.rollout.observe > .zero, pauses: config.rollout.pause > .zero
        )
        let current = try journal.currentRelease() ?? "nothing"
        var lines = ["deploy \(release) (fleet runs \(current)); \(surge ? "surge \(config.rollout.maxSurge)" : "max_unavailable \(config.rollout.maxUnavailable)"), canary \(config.rollout.canary)"]
        if let hook = config.hooks.preDeploy { lines.append("run pre_deploy: \(hook)") }
        var action = machine.start()
        while true {
            switch action {
            case .upgrade(let nodes):
                for name in nodes {
                    let node = config.nodes.first { $0.name == name }!
                    let steps = surge
                        ? "start \(release) on a spare port, health (rise \(config.health.rise), min ready \(config.health.minReady.shortDescription)), admit, drain old (≤ \(config.rollout.drainTimeout.shortDescription)), stop old"
                        : "drain (≤ \(config.rollout.drainTimeout.shortDescription)), stop (\(config.release.stopGrace.shortDescription) grace), start \(release) on :\(node.port), health (rise \(config.health.rise), min ready \(config.health.minReady.shortDescription)), admit"
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
                return lines
            case .rollback, .failed:
                return lines
            }
        }
    }

    // MARK: The run

    private func begin(target: String, isRollback: Bool) throws -> DeployJournal.Deployment {
        let id = "d-" + String(Int(Date().timeIntervalSince1970 * 1000), radix: 36)
        let event = RolloutEvent(
            deployment: id, kind: .deployStarted, target: target, previous: try journal.currentRelease(),
            nodes: config.nodes.map(\.name), isRollback: isRollback
        )
        try record(event)
        return DeployJournal.Deployment(id: id, target: target, previous: event.previous, nodes: event.nodes ?? [], isRollback: isRollback, events: [event])
    }

    private func run(_ deployment: DeployJournal.Deployment) async throws {
        let surge = config.rollout.maxSurge > 0 && !deployment.isRollback
        var machine = RolloutStateMachine(
            nodes: deployment.nodes,
            batchSize: surge ? config.rollout.maxSurge : config.rollout.maxUnavailable,
            canary: deployment.isRollback ? 0 : config.rollout.canary,
            observes: !deployment.isRollback && config.rollout.observe > .zero,
            pauses: !deployment.isRollback && config.rollout.pause > .zero
        )
        // A deployment interrupted while rolling back goes on rolling back.
        var action = deployment.rollingBack
            ? .rollback(nodes: deployment.nodes, reason: deployment.events.last { $0.kind == .rollbackStarted }?.detail ?? "resumed rollback")
            : machine.start()
        var changed: [String: Bool] = [:]
        while true {
            switch action {
            case .upgrade(let nodes):
                do {
                    let results = try await upgrade(nodes, to: deployment.target, deployment: deployment.id, surge: surge)
                    changed.merge(results) { $1 }
                    action = machine.batchSucceeded()
                } catch {
                    emit(RolloutEvent(deployment: deployment.id, kind: .message, detail: "\(error)"))
                    action = machine.batchFailed(reason: "\(error)")
                }
            case .observe(let nodes):
                guard nodes.contains(where: { changed[$0] ?? true }) else {
                    action = machine.observeSucceeded()
                    continue
                }
                if let breach = try await observe(nodes, release: deployment.target, deployment: deployment.id) {
                    action = machine.observeBreached(reason: breach)
                } else {
                    action = machine.observeSucceeded()
                }
            case .pause:
                reporter.tick("pausing \(config.rollout.pause.shortDescription)")
                try await Task.sleep(for: config.rollout.pause)
                action = machine.pauseElapsed()
            case .rollback(let nodes, let reason):
                guard let previous = deployment.isRollback ? nil : deployment.previous else {
                    try record(RolloutEvent(deployment: deployment.id, kind: .failed, detail: "\(reason); no earlier release to roll back to"))
                    throw RolloutFailure(message: "\(reason); no earlier release to roll back to")
                }
                if !deployment.rollingBack || machine.phase != .notStarted {
                    try record(RolloutEvent(deployment: deployment.id, kind: .rollbackStarted, release: previous, nodes: nodes, detail: reason))
                }
                for batch in stride(from: 0, to: nodes.count, by: config.rollout.maxUnavailable) {
                    let slice = Array(nodes[batch..<min(batch + config.rollout.maxUnavailable, nodes.count)])
                    _ = try await upgrade(slice, to: previous, deployment: deployment.id, surge: false)
                }
                action = machine.rollbackFinished()
                try record(RolloutEvent(deployment: deployment.id, kind: .failed, release: previous, detail: "rolled back to \(previous): \(reason)"))
                throw RolloutFailure(message: "deploy of \(deployment.target) failed and was rolled back to \(previous): \(reason)")
            case .finished:
                try record(RolloutEvent(deployment: deployment.id, kind: .finished, release: deployment.target, detail: "every node runs \(deployment.target)"))
                if let hook = config.hooks.postDeploy, !deployment.isRollback {
                    try await runHook(hook, name: "post_deploy", environment: ["BATON_RELEASE": deployment.target])
                }
                return
            case .failed(let reason):
                throw RolloutFailure(message: reason)
            }
        }
    }

    /// Upgrades a batch of nodes at once; returns which of them actually changed.
    private func upgrade(_ nodes: [String], to release: String, deployment: String, surge: Bool) async throws -> [String: Bool] {
        try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for name in nodes {
                guard let node = config.nodes.first(where: { $0.name == name }) else {
                    throw RolloutFailure(message: "node \(name) is in the deployment but not in \(config.file)")
                }
                group.addTask { (name, try await upgrade(node, to: release, deployment: deployment, surge: surge)) }
            }
            var changed: [String: Bool] = [:]
            for try await (name, didChange) in group { changed[name] = didChange }
            return changed
        }
    }

    // MARK: One node

    /// Brings one node to `release`, whatever state it is in; returns false when it already was.
    func upgrade(_ node: BatonConfig.Node, to release: String, deployment: String, surge: Bool) async throws -> Bool {
        let backend = Self.backendName(node: node.name, release: release)
        let instances = driver.instances(node: node.name)
        let current = instances.first { $0.release == release && $0.alive }
        let others = instances.filter { !($0.release == release && $0.alive) }
        let admitted = try await admittedEverywhere(backend)
        let strayBackends = try await backends(of: node.name).filter { $0 != backend }
        if let current, admitted, others.isEmpty, strayBackends.isEmpty {
            try step(deployment, node, .skipped, release, "already runs \(release) (pid \(current.pid))")
            return false
        }
        let env = ["BATON_NODE": node.name, "BATON_RELEASE": release, "BATON_NODE_URL": "http://127.0.0.1:\(current?.port ?? node.port)"]
        if let hook = config.hooks.beforeNode { try await runHook(hook, name: "before_node", environment: env) }

        if surge {
            let busy = Set(instances.filter(\.alive).map(\.port))
            let port = try current?.port ?? (busy.contains(node.port) ? driver.freePort(node: node.name) : node.port)
            let instance = try await startAndWarm(node, release: release, port: port, existing: current, deployment: deployment)
            try await admit(node, instance, deployment: deployment)
            for old in others { try await retire(old, deployment: deployment) }
            for stray in strayBackends where !others.contains(where: { Self.backendName(node: $0.node, release: $0.release) == stray }) {
                try await retireBackend(stray, node: node.name, deployment: deployment)
            }
        } else {
            for old in others { try await retire(old, deployment: deployment) }
            for stray in strayBackends where !others.contains(where: { Self.backendName(node: $0.node, release: $0.release) == stray }) {
                try await retireBackend(stray, node: node.name, deployment: deployment)
            }
            let instance = try await startAndWarm(node, release: release, port: current?.port ?? node.port, existing: current, deployment: deployment)
            try await admit(node, instance, deployment: deployment)
        }
        if let hook = config.hooks.afterNode { try await runHook(hook, name: "after_node", environment: env) }
        try step(deployment, node, .done, release)
        return true
    }

    /// Drains an instance on every proxy, stops it, and removes its backend.
    private func retire(_ instance: NodeInstance, deployment: String) async throws {
        let backend = Self.backendName(node: instance.node, release: instance.release)
        try step(deployment, instance.node, .draining, instance.release, backend)
        let results = try await traffic.drain(backend: backend, timeout: config.rollout.drainTimeout)
        let cut = results.reduce(0) { $0 + $1.cut }
        try step(deployment, instance.node, .drained, instance.release, cut > 0 ? "\(cut) request(s) cut at the drain timeout" : nil)
        try step(deployment, instance.node, .stopping, instance.release, "pid \(instance.pid)")
        try await driver.stop(instance, signal: config.release.stopSignal, grace: config.release.stopGrace)
        try await traffic.remove(backend: backend)
        try step(deployment, instance.node, .stopped, instance.release)
    }

    /// A backend on the proxies with no process behind it (left by a crash): drain and remove it.
    private func retireBackend(_ backend: String, node: String, deployment: String) async throws {
        try step(deployment, node, .draining, nil, backend)
        _ = try await traffic.drain(backend: backend, timeout: config.rollout.drainTimeout)
        try await traffic.remove(backend: backend)
        try step(deployment, node, .stopped, nil, "removed \(backend), which had no process")
    }

    private func startAndWarm(
        _ node: BatonConfig.Node, release: String, port: Int, existing: NodeInstance?, deployment: String
    ) async throws -> NodeInstance {
        let instance: NodeInstance
        if let existing {
            instance = existing
        } else {
            try step(deployment, node, .starting, release, "port \(port)")
            let command = config.release.start
                .replacingOccurrences(of: "{release}", with: release)
                .replacingOccurrences(of: "{port}", with: String(port))
                .replacingOccurrences(of: "{node}", with: node.name)
                .replacingOccurrences(of: "{dir}", with: releases.path(of: release))
            instance = try await driver.start(node: node.name, release: release, port: port, command: command, environment: config.release.environment)
        }
        try step(deployment, node, .warming, release, "pid \(instance.pid) on :\(instance.port)")
        try await waitHealthy(instance)
        return instance
    }

    private func admit(_ node: BatonConfig.Node, _ instance: NodeInstance, deployment: String) async throws {
        let backend = Self.backendName(node: node.name, release: instance.release)
        try step(deployment, node, .admitting, instance.release, backend)
        do {
            try await traffic.admit(backend: backend, address: "127.0.0.1:\(instance.port)", timeout: config.health.startupGrace)
        } catch {
            throw RolloutFailure(message: "\(node.name): the proxy did not admit \(backend): \(error)")
        }
        try step(deployment, node, .admitted, instance.release, backend)
    }

    /// Rise consecutive passing checks within the startup grace, then healthy for min_ready.
    private func waitHealthy(_ instance: NodeInstance) async throws {
        let endpoint = Endpoint.tcp(host: "127.0.0.1", port: instance.port)
        let request = HTTPRequest(.GET, config.health.path, headers: ["connection": "close", "user-agent": "baton-deploy"])
        let start = ContinuousClock.now
        var passes = 0
        var healthySince: ContinuousClock.Instant?
        var lastProblem = "no answer yet"
        while ContinuousClock.now - start < config.health.startupGrace {
            guard driver.instances(node: instance.node).contains(where: { $0.pid == instance.pid && $0.alive }) else {
                throw RolloutFailure(message: "\(instance.node): release \(instance.release) exited while starting; see \(config.stateDirectory)/logs/\(instance.node)-\(instance.release).log")
            }
            do {
                let response = try await HTTP1Client.send(request, to: endpoint, timeout: config.health.timeout)
                if (200..<400).contains(response.status) {
                    passes += 1
                } else {
                    passes = 0
                    lastProblem = "\(config.health.path) answered \(response.status)"
                }
            } catch {
                passes = 0
                lastProblem = "\(error)"
            }
            if passes >= config.health.rise {
                healthySince = healthySince ?? .now
                if ContinuousClock.now - healthySince! >= config.health.minReady { return }
            } else {
                healthySince = nil
            }
            try await Task.sleep(for: config.health.interval)
        }
        throw RolloutFailure(
            message: "\(instance.node): release \(instance.release) did not become healthy within \(config.health.startupGrace.shortDescription) (\(lastProblem))"
        )
    }

    // MARK: Observe

    /// Watches the batch's new backends for the observe window; returns a breach, or nil.
    private func observe(_ nodes: [String], release: String, deployment: String) async throws -> String? {
        let backends = nodes.map { Self.backendName(node: $0, release: release) }
        let before = try await traffic.metrics()
        let start = ContinuousClock.now
        while ContinuousClock.now - start < config.rollout.observe {
            let left = config.rollout.observe - (ContinuousClock.now - start)
            reporter.tick("observing \(nodes.joined(separator: ", ")): \(left.shortDescription) left")
            try await Task.sleep(for: min(left, .milliseconds(500)))
        }
        let after = try await traffic.metrics()
        for backend in backends {
            let verdict = RolloutAnalysis.judge(
                before: RolloutAnalysis.sample(backend: backend, from: before),
                after: RolloutAnalysis.sample(backend: backend, from: after),
                maxErrorRate: config.rollout.maxErrorRate,
                maxP99: config.rollout.maxP99
            )
            let summary = "\(backend): \(verdict.requests) requests, \(String(format: "%.1f", verdict.errorRate * 100))% 5xx, p99 \(verdict.p99?.shortDescription ?? "-")"
            try record(RolloutEvent(deployment: deployment, kind: .observed, node: backend, release: release, detail: summary + (verdict.breach.map { " — \($0)" } ?? "")))
            if let breach = verdict.breach { return "\(backend): \(breach)" }
        }
        return nil
    }

    // MARK: Helpers

    private func admittedEverywhere(_ backend: String) async throws -> Bool {
        let all = try await traffic.backends()
        return !all.isEmpty && all.values.allSatisfy { list in list.contains { $0.name == backend && $0.state == .ready } }
    }

    /// Backends of this node on any proxy (named NODE-RELEASE).
    private func backends(of node: String) async throws -> [String] {
        let names = try await traffic.backends().values.flatMap { $0.map(\.name) }
        return Array(Set(names.filter { $0.hasPrefix("\(node)-") })).sorted()
    }

    private func step(_ deployment: String, _ node: BatonConfig.Node, _ step: RolloutEvent.Step, _ release: String?, _ detail: String? = nil) throws {
        try self.step(deployment, node.name, step, release, detail)
    }

    private func step(_ deployment: String, _ node: String, _ step: RolloutEvent.Step, _ release: String?, _ detail: String? = nil) throws {
        try record(RolloutEvent(deployment: deployment, kind: .step, node: node, step: step, release: release, detail: detail))
    }

    /// Journal first (flushed), then show.
    private func record(_ event: RolloutEvent) throws {
        try journal.append(event)
        reporter.report(event)
    }

    private func emit(_ event: RolloutEvent) {
        reporter.report(event)
    }

    private func runHook(_ command: String, name: String, environment: [String: String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: (config.file as NSString).deletingLastPathComponent.isEmpty ? "." : (config.file as NSString).deletingLastPathComponent)
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard process.terminationStatus == 0 else {
            throw RolloutFailure(message: "hook \(name) (\(command)) exited with status \(process.terminationStatus)")
        }
    }
}
