import BatonCompat
import BatonCore
import BatonProxy
import Foundation

/// Why a deployment stopped; the message is the one line the CLI prints.
public struct RolloutFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The reporter has shown it already (a `failed` event), so the CLI prints nothing more.
    public var reported = false
    public var description: String { message }

    public init(message: String, reported: Bool = false) {
        self.message = message
        self.reported = reported
    }
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
        self.driver = driver ?? FleetDriver(config: config)
        self.traffic = traffic ?? LoadBalancers(targets: config.proxies)
        self.journal = DeployJournal(
            store: config.stateURL.map { PostgresStateStore(url: $0, service: config.service) } ?? FileStateStore(stateDirectory: config.stateDirectory)
        )
        self.releases = ReleaseStore(stateDirectory: config.stateDirectory)
        self.reporter = reporter
    }

    /// The proxy backend name of a node's instance of a release.
    public static func backendName(node: String, release: String) -> String { "\(node)-\(release)" }

    // MARK: Commands

    /// Upgrades every node to `release`; with `resume`, finishes the interrupted deployment.
    public func deploy(release requested: String?, resume: Bool, force: Bool = false) async throws {
        try await holdingLock(resume ? "deploy --resume" : "deploy \(requested ?? "")") {
            try await deployHoldingLock(release: requested, resume: resume, force: force)
        }
    }

    /// Runs `body` holding the deploy lock (refused, naming the holder, when another has it).
    func holdingLock<T>(_ command: String, _ body: () async throws -> T) async throws -> T {
        let lock = try await journal.store.lock(.current(command))
        do {
            let result = try await body()
            await lock.release()
            return result
        } catch {
            await lock.release()
            throw error
        }
    }

    private func deployHoldingLock(release requested: String?, resume: Bool, force: Bool) async throws {
        if let interrupted = try await journal.interrupted() {
            guard resume else {
                let step = interrupted.lastStep.map { " at \($0.node ?? "?") (\($0.step?.rawValue ?? "?"))" } ?? ""
                throw RolloutFailure(
                    message: "deployment \(interrupted.id) to \(interrupted.target) was interrupted\(step); run `baton deploy --resume` to finish it or `baton rollback` to return to \(interrupted.previous ?? "the previous release")"
                )
            }
            if let requested, requested != interrupted.target, !interrupted.isRollback {
                throw RolloutFailure(message: "--resume: the interrupted deployment targets \(interrupted.target), not \(requested)")
            }
            // Resuming from another checkout: it needs the releases in its own store.
            let needed = [interrupted.target] + (interrupted.isRollback ? [] : [interrupted.previous].compactMap { $0 })
            for id in needed where !releases.exists(id) {
                throw RolloutFailure(message: "--resume: release \(id) is not in \(releases.directory); add it first (`baton release add DIR --id \(id)`): the deployment may need it")
            }
            try await checkPorts(interrupted.nodes)
            try await ship(needed, to: interrupted.nodes)
            emit(RolloutEvent(deployment: interrupted.id, kind: .message, detail: Self.resumeSummary(interrupted)))
            try await run(interrupted)
            return
        }
        guard !resume else { throw RolloutFailure(message: "--resume: no interrupted deployment to resume") }
        guard let release = requested else { throw RolloutFailure(message: "which release? e.g. baton deploy 5.4") }
        guard releases.exists(release) else {
            throw RolloutFailure(message: "release \(release) is not in \(releases.directory); add it with `baton release add DIR --id \(release)`")
        }
        try await checkCompatibility(to: release, force: force)
        try await checkPorts(config.nodes.map(\.name))
        try await ship([release], to: config.nodes.map(\.name))
        if let hook = config.hooks.preDeploy { try await runHook(hook, name: "pre_deploy", environment: ["BATON_RELEASE": release]) }
        let deployment = try await begin(target: release, isRollback: false)
        try await run(deployment)
    }

    /// The pre-flight: when the running and the new release both ship their OpenAPI document,
    /// old and new servers will call each other during the rollout, so both directions must
    /// hold. ERR findings (or an unreadable document) refuse the deploy unless `force`.
    private func checkCompatibility(to release: String, force: Bool) async throws {
        guard let current = try await journal.currentRelease(), current != release else { return }
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

    /// What `--resume` is about to finish, said before it does: the deployment, or its rollback.
    static func resumeSummary(_ deployment: DeployJournal.Deployment) -> String {
        if deployment.isRollback { return "resuming \(deployment.id): the rollback to \(deployment.target)" }
        if deployment.rollingBack {
            let reason = deployment.events.last { $0.kind == .rollbackStarted }?.detail ?? "it failed"
            return "resuming \(deployment.id): the rollback to \(deployment.previous ?? "?") of the deployment to \(deployment.target) (\(reason))"
        }
        return "resuming \(deployment.id): the deployment to \(deployment.target)"
    }

    /// Every node's port is free or held by one of the node's own instances: a stray server
    /// there would answer the health checks in the new release's name. Checked before anything
    /// changes.
    private func checkPorts(_ nodes: [String]) async throws {
        for problem in try await portProblems(nodes) { throw RolloutFailure(message: problem) }
    }

    /// One line for each node whose port is held by a process that is none of its instances.
    /// Every node's host is reached here, so an unreachable host or an unknown host key stops
    /// the deploy before anything changes.
    func portProblems(_ nodes: [String]) async throws -> [String] {
        let selected = config.nodes.filter { nodes.contains($0.name) }
        // Only looking: every host at once (max_parallel_hosts bounds the work on them).
        return try await Self.concurrently(selected, limit: max(selected.count, 1)) { node -> String? in
            guard let listener = try await driver.listener(node: node.name, port: node.port) else { return nil }
            let own = try await driver.instances(node: node.name).filter(\.alive)
            guard !own.contains(where: listener.isOwned) else { return nil }
            return "\(node.name): port \(node.port) is in use by \(listener.holder), which Baton did not start; stop it or give \(node.name) another port in \(config.file)"
        }.compactMap { $0 }
    }

    /// Puts each release on every node that runs elsewhere (a no-op for local nodes and for a
    /// host that has it already), before the deployment changes anything.
    private func ship(_ ids: [String], to nodes: [String]) async throws {
        let remote = config.nodes.filter { nodes.contains($0.name) && $0.ssh != nil }
        guard !remote.isEmpty else { return }
        for id in ids {
            let keep = try await settings(of: id).release.keep
            reporter.tick("shipping \(id) to \(remote.count) host(s)")
            _ = try await Self.concurrently(remote, limit: config.rollout.maxParallelHosts) { node in
                try await driver.ship(release: id, from: releases.path(of: id), to: node.name, keep: keep)
            }
        }
    }

    /// `body` for each item, at most `limit` at once; results in the items' order. The first
    /// error cancels the rest.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], limit: Int, _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            while next < min(limit, items.count) {
                let index = next
                group.addTask { (index, try await body(items[index])) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < items.count {
                    let index = next
                    group.addTask { (index, try await body(items[index])) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    /// Returns every node to `release` (default: the release before the current or interrupted
    /// deployment), without canary or observe windows.
    public func rollback(to requested: String?) async throws {
        try await holdingLock("rollback \(requested ?? "")") { try await rollbackHoldingLock(to: requested) }
    }

    private func rollbackHoldingLock(to requested: String?) async throws {
        let deployments = try await journal.deployments()
        let interrupted = try await journal.interrupted()
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
        try await checkPorts(interrupted?.nodes ?? config.nodes.map(\.name))
        try await ship([target], to: interrupted?.nodes ?? config.nodes.map(\.name))
        if let interrupted {
            try await journal.append(RolloutEvent(deployment: interrupted.id, kind: .failed, detail: "abandoned for a rollback to \(target)"))
        }
        let deployment = try await begin(target: target, isRollback: true)
        try await run(deployment)
    }

    /// Copies `binary` to the hosts of the `ssh://` nodes named (all when empty); one line per
    /// host with the version it now runs.
    public func installBaton(_ binary: String, nodes names: [String]) async throws -> [String] {
        let remote = config.nodes.filter { $0.ssh != nil && (names.isEmpty || names.contains($0.name)) }
        if let unknown = names.first(where: { name in !remote.contains { $0.name == name } }) {
            throw BatonError(.notFound, "node \(unknown): not an ssh:// node of \(config.file)")
        }
        guard !remote.isEmpty else { throw BatonError(.notFound, "\(config.file) has no ssh:// nodes") }
        let ssh = SSHDriver(nodes: config.nodes, settings: config.ssh)
        var lines: [String] = []
        // One copy per host (user, address and port), whichever of its nodes is named.
        var done: Set<BatonConfig.SSHTarget> = []
        for node in remote where done.insert(node.ssh!).inserted {
            let version = try await ssh.installBaton(binary, on: node.name)
            lines.append("\(node.ssh!.destination): \(config.ssh.directory)/bin/baton \(version)")
        }
        return lines
    }

    /// Takes a node out of the fleet: every instance of it is drained on every proxy, stopped
    /// and removed, and any backend of it left on a proxy is removed too. Returns what it did,
    /// a line each. The node must also leave baton.yml, or the next deploy starts it again.
    public func removeNode(_ name: String) async throws -> [String] {
        try await holdingLock("node remove \(name)") { try await removeNodeHoldingLock(name) }
    }

    private func removeNodeHoldingLock(_ name: String) async throws -> [String] {
        if let interrupted = try await journal.interrupted() {
            throw RolloutFailure(message: "deployment \(interrupted.id) was interrupted; finish it (`baton deploy --resume`) or roll it back before removing a node")
        }
        let instances = try await driver.instances(node: name)
        let backends = try await backends(of: name)
        guard !instances.isEmpty || !backends.isEmpty else {
            throw RolloutFailure(message: "node \(name): no instance and no backend of it anywhere; nothing to remove")
        }
        let id = "remove-" + String(Int(Date().timeIntervalSince1970 * 1000), radix: 36)
        try await record(RolloutEvent(deployment: id, kind: .message, node: name, detail: "removing node \(name)"))
        var done: [String] = []
        for instance in instances {
            try await retire(instance, deployment: id)
            done.append("stopped \(name) \(instance.release) (pid \(instance.pid)) after draining it")
        }
        for backend in try await self.backends(of: name) {
            try await retireBackend(backend, node: name, deployment: id)
            done.append("removed backend \(backend) from the proxies")
        }
        if config.nodes.contains(where: { $0.name == name }) {
            done.append("\(name) is still in \(config.file): remove it there, or the next deploy starts it again")
        }
        return done
    }

    // MARK: The run

    private func begin(target: String, isRollback: Bool) async throws -> DeployJournal.Deployment {
        let id = "d-" + String(Int(Date().timeIntervalSince1970 * 1000), radix: 36)
        let event = RolloutEvent(
            deployment: id, kind: .deployStarted, target: target, previous: try await journal.currentRelease(),
            nodes: config.nodes.map(\.name), isRollback: isRollback,
            settings: isRollback ? try await settings(of: target) : ReleaseSettings(config), actor: LockHolder.current("").who,
            baton: BatonVersion.description
        )
        try await record(event)
        return DeployJournal.Deployment(id: id, target: target, previous: event.previous, nodes: event.nodes ?? [], isRollback: isRollback, events: [event])
    }

    /// How `release` is run: as it was last deployed, else as baton.yml says now.
    func settings(of release: String) async throws -> ReleaseSettings {
        try await journal.settings(of: release) ?? ReleaseSettings(config)
    }

    private func run(_ deployment: DeployJournal.Deployment) async throws {
        let settings = deployment.settings ?? ReleaseSettings(config)
        let surge = config.rollout.maxSurge > 0 && !deployment.isRollback
        var machine = RolloutStateMachine(
            nodes: deployment.nodes,
            batchSize: surge ? config.rollout.maxSurge : config.rollout.maxUnavailable,
            canary: deployment.isRollback ? 0 : config.rollout.canary,
            observes: !deployment.isRollback && config.rollout.observe > .zero,
            pauses: !deployment.isRollback && config.rollout.pause > .zero
        )
        // A deployment interrupted while rolling back goes on rolling back (its start is in the
        // journal already).
        var action = deployment.rollingBack
            ? machine.resumeRollback(reason: deployment.events.last { $0.kind == .rollbackStarted }?.detail ?? "resumed rollback")
            : machine.start()
        var rollbackRecorded = deployment.rollingBack
        var changed: [String: Bool] = [:]
        while true {
            switch action {
            case .upgrade(let nodes):
                do {
                    let results = try await upgrade(nodes, to: deployment.target, settings: settings, deployment: deployment.id, surge: surge)
                    changed.merge(results) { $1 }
                    action = machine.batchSucceeded()
                } catch let error as JournalUnwritable {
                    throw RolloutFailure(message: error.description)
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
                    try await record(RolloutEvent(deployment: deployment.id, kind: .failed, detail: "\(reason); no earlier release to roll back to"))
                    throw RolloutFailure(message: "\(reason); no earlier release to roll back to", reported: true)
                }
                if !rollbackRecorded {
                    try await record(RolloutEvent(deployment: deployment.id, kind: .rollbackStarted, release: previous, nodes: nodes, detail: reason))
                    rollbackRecorded = true
                }
                // The previous release runs as it was deployed; every node is tried, and one that
                // cannot be rolled back is named with what (if anything) still serves there.
                let previousSettings = try await self.settings(of: previous)
                var stranded: [String] = []
                for batch in stride(from: 0, to: nodes.count, by: config.rollout.maxUnavailable) {
                    let slice = Array(nodes[batch..<min(batch + config.rollout.maxUnavailable, nodes.count)])
                    do {
                        _ = try await upgrade(slice, to: previous, settings: previousSettings, deployment: deployment.id, surge: false)
                    } catch {
                        for node in slice { stranded.append("\(node): \(try await servingSummary(node)) (rollback: \(error))") }
                    }
                }
                action = machine.rollbackFinished()
                // A node that could not be rolled back (its host unreachable, say) leaves the
                // deployment rolling back, not failed: `--resume` or `rollback` finishes it.
                guard stranded.isEmpty else {
                    let detail = "rollback to \(previous) incomplete after: \(reason); " + stranded.joined(separator: "; ")
                    try await record(RolloutEvent(deployment: deployment.id, kind: .message, release: previous, detail: detail))
                    throw RolloutFailure(
                        message: "deploy of \(deployment.target) failed (\(reason)) and the rollback to \(previous) did not finish: "
                            + stranded.joined(separator: "; ") + "; once the nodes are reachable, `baton deploy --resume` finishes the rollback"
                    )
                }
                try await record(RolloutEvent(deployment: deployment.id, kind: .failed, release: previous, detail: "rolled back to \(previous): \(reason)"))
                throw RolloutFailure(message: "deploy of \(deployment.target) failed and was rolled back to \(previous): \(reason)", reported: true)
            case .finished:
                try await record(RolloutEvent(deployment: deployment.id, kind: .finished, release: deployment.target, detail: "every node runs \(deployment.target)"))
                if let hook = config.hooks.postDeploy, !deployment.isRollback {
                    try await runHook(hook, name: "post_deploy", environment: ["BATON_RELEASE": deployment.target])
                }
                return
            case .failed(let reason):
                throw RolloutFailure(message: reason)
            }
        }
    }

    /// What serves on a node now, for a report: "serves 5.3 on every proxy" or "serves nothing".
    private func servingSummary(_ node: String) async throws -> String {
        let all = try await traffic.backends()
        let ready = Set(all.values.flatMap { $0.filter { $0.state == .ready && $0.name.hasPrefix("\(node)-") }.map(\.name) })
        return ready.isEmpty ? "serves nothing (out of rotation on every proxy)" : "still serves \(ready.sorted().joined(separator: ", "))"
    }

    /// Upgrades a batch of nodes, `max_parallel_hosts` at once; returns which of them changed.
    private func upgrade(_ nodes: [String], to release: String, settings: ReleaseSettings, deployment: String, surge: Bool) async throws -> [String: Bool] {
        let batch = try nodes.map { name in
            guard let node = config.nodes.first(where: { $0.name == name }) else {
                throw RolloutFailure(message: "node \(name) is in the deployment but not in \(config.file)")
            }
            return node
        }
        let changed = try await Self.concurrently(batch, limit: config.rollout.maxParallelHosts) { node in
            try await upgrade(node, to: release, settings: settings, deployment: deployment, surge: surge)
        }
        return Dictionary(uniqueKeysWithValues: zip(nodes, changed))
    }

    // MARK: One node

    /// Brings one node to `release`, whatever state it is in; returns false when it already was.
    func upgrade(_ node: BatonConfig.Node, to release: String, settings: ReleaseSettings, deployment: String, surge: Bool) async throws -> Bool {
        let backend = Self.backendName(node: node.name, release: release)
        let instances = try await driver.instances(node: node.name)
        let current = instances.first { $0.release == release && $0.alive }
        let others = instances.filter { !($0.release == release && $0.alive) }
        let admitted = try await admittedEverywhere(backend)
        let strayBackends = try await backends(of: node.name).filter { $0 != backend }
        if let current, admitted, others.isEmpty, strayBackends.isEmpty {
            try await step(deployment, node, .skipped, release, "already runs \(release) (pid \(current.pid))")
            return false
        }
        let env = ["BATON_NODE": node.name, "BATON_RELEASE": release, "BATON_NODE_URL": "http://\(current?.endpoint ?? node.endpoint)"]
        if let hook = config.hooks.beforeNode { try await runHook(hook, name: "before_node", environment: env) }

        if surge {
            let busy = Set(instances.filter(\.alive).map(\.port))
            var port = current?.port ?? node.port
            if current == nil, busy.contains(node.port) { port = try await driver.freePort(node: node.name) }
            let instance = try await startAndWarm(node, release: release, settings: settings, port: port, existing: current, deployment: deployment)
            try await admit(node, instance, health: settings.health, deployment: deployment)
            for old in others { try await retire(old, deployment: deployment) }
            for stray in strayBackends where !others.contains(where: { Self.backendName(node: $0.node, release: $0.release) == stray }) {
                try await retireBackend(stray, node: node.name, deployment: deployment)
            }
        } else {
            for old in others { try await retire(old, deployment: deployment) }
            for stray in strayBackends where !others.contains(where: { Self.backendName(node: $0.node, release: $0.release) == stray }) {
                try await retireBackend(stray, node: node.name, deployment: deployment)
            }
            let instance = try await startAndWarm(node, release: release, settings: settings, port: current?.port ?? node.port, existing: current, deployment: deployment)
            try await admit(node, instance, health: settings.health, deployment: deployment)
        }
        if let hook = config.hooks.afterNode { try await runHook(hook, name: "after_node", environment: env) }
        try await step(deployment, node, .done, release)
        return true
    }

    /// Drains an instance on every proxy, stops it, and removes its backend.
    private func retire(_ instance: NodeInstance, deployment: String) async throws {
        let backend = Self.backendName(node: instance.node, release: instance.release)
        try await step(deployment, instance.node, .draining, instance.release, backend)
        let results = try await traffic.drain(backend: backend, timeout: config.rollout.drainTimeout)
        let cut = results.reduce(0) { $0 + $1.cut }
        try await step(deployment, instance.node, .drained, instance.release, cut > 0 ? "\(cut) request(s) cut at the drain timeout" : nil)
        try await step(deployment, instance.node, .stopping, instance.release, "pid \(instance.pid)")
        let stopping = try await settings(of: instance.release).release
        try await driver.stop(instance, signal: stopping.stopSignal, grace: stopping.stopGrace)
        try await traffic.remove(backend: backend)
        try await step(deployment, instance.node, .stopped, instance.release)
    }

    /// A backend on the proxies with no process behind it (left by a crash): drain and remove it.
    private func retireBackend(_ backend: String, node: String, deployment: String) async throws {
        try await step(deployment, node, .draining, nil, backend)
        _ = try await traffic.drain(backend: backend, timeout: config.rollout.drainTimeout)
        try await traffic.remove(backend: backend)
        try await step(deployment, node, .stopped, nil, "removed \(backend), which had no process")
    }

    // MARK: Observe

    /// Watches the batch's new backends for the observe window; returns a breach, or nil.
    private func observe(_ nodes: [String], release: String, deployment: String) async throws -> String? {
        let backends = nodes.map { Self.backendName(node: $0, release: release) }
        let before = try await traffic.stats()
        let start = ContinuousClock.now
        while ContinuousClock.now - start < config.rollout.observe {
            let left = config.rollout.observe - (ContinuousClock.now - start)
            reporter.tick("observing \(nodes.joined(separator: ", ")): \(left.shortDescription) left")
            try await Task.sleep(for: min(left, .milliseconds(500)))
        }
        let after = try await traffic.stats()
        for backend in backends {
            let verdict = RolloutAnalysis.judge(
                before: before[backend] ?? BackendStats(),
                after: after[backend] ?? BackendStats(),
                maxErrorRate: config.rollout.maxErrorRate,
                maxP99: config.rollout.maxP99
            )
            let summary = "\(backend): \(verdict.requests) requests, \(String(format: "%.1f", verdict.errorRate * 100))% 5xx, p99 \(verdict.p99?.shortDescription ?? "-")"
            try await record(RolloutEvent(deployment: deployment, kind: .observed, node: backend, release: release, detail: summary + (verdict.breach.map { " — \($0)" } ?? "")))
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

    func step(_ deployment: String, _ node: BatonConfig.Node, _ step: RolloutEvent.Step, _ release: String?, _ detail: String? = nil) async throws {
        try await self.step(deployment, node.name, step, release, detail)
    }

    func step(_ deployment: String, _ node: String, _ step: RolloutEvent.Step, _ release: String?, _ detail: String? = nil) async throws {
        try await record(RolloutEvent(deployment: deployment, kind: .step, node: node, step: step, release: release, detail: detail))
    }

    /// Journal first (flushed), then show.
    private func record(_ event: RolloutEvent) async throws {
        do {
            try await journal.append(event)
        } catch {
            throw JournalUnwritable(message: "\(error)")
        }
        reporter.report(event)
    }

    /// The journal (or the lock it is written under) is gone: nothing more may be done, since
    /// nothing more could be recorded. Not a node's failure, so no rollback either.
    struct JournalUnwritable: Error, CustomStringConvertible {
        var message: String
        var description: String {
            "the deployment stopped where it was, because its journal cannot be written: \(message); once the state store is back, `baton deploy --resume` finishes it"
        }
    }

    private func emit(_ event: RolloutEvent) {
        reporter.report(event)
    }

    func runHook(_ command: String, name: String, environment: [String: String]) async throws {
        let directory = (config.file as NSString).deletingLastPathComponent
        try await HookRunner(directory: directory, logDirectory: config.stateDirectory + "/logs", timeout: config.hooks.timeout)
            .run(command, name: name, environment: environment)
    }
}
