import BatonCore
import BatonProxy
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// Real processes (TranslateApp), a real proxy, loopback. Serialized: they measure failures
/// under load.
@Suite(.serialized) struct DeployTests {
    @Test func rollingDeployUnderLoadFailsNothing() async throws {
        let fleet = try await TestFleet.make()
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))

        let load = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 6, request: translateRequests)
        let sockets = WebSocketLoad.start(against: fleet.proxy.endpoint, users: 4, path: "/api/live", interval: .milliseconds(100))
        let watcher = fleet.watchReadyCount()
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        let fewestReady = await watcher.stop()
        let result = await load.stop()
        let socketResult = await sockets.stop()

        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.total > 100)
        // Every node was drained, so every first socket was ended with a 1001 and reconnected.
        #expect(socketResult.failures.isEmpty, "\(socketResult.failures.prefix(5))")
        #expect(socketResult.politeCloses >= 4, "\(socketResult)")
        #expect(socketResult.sessions >= 4 + socketResult.politeCloses)
        #expect(socketResult.acknowledged > 20)
        #expect(try await fleet.everyNodeRuns("5.4"))
        #expect(fleet.proxyServesOnly("5.4"))
        #expect(fewestReady >= 3, "more than max_unavailable (1) nodes were out of rotation")
        let events = try await fleet.journalEvents()
        #expect(maxOutOfRotation(events) == 1)
        #expect(result.byBackend.keys.contains { $0.hasSuffix("-5.3") } && result.byBackend.keys.contains { $0.hasSuffix("-5.4") })
        await fleet.cleanup()
    }

    @Test func surgeKeepsFullCapacity() async throws {
        let fleet = try await TestFleet.make(rollout: "max_unavailable: 1\n  max_surge: 1\n  canary: 1\n  observe: 0s")
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let load = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 6, request: translateRequests)
        let watcher = fleet.watchReadyCount()
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        let fewestReady = await watcher.stop()
        let result = await load.stop()

        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(try await fleet.everyNodeRuns("5.4"))
        #expect(fleet.proxyServesOnly("5.4"))
        #expect(fewestReady >= 4, "capacity dipped during a surge deploy: \(fewestReady) ready")
        await fleet.cleanup()
    }

    @Test func canaryFailingHealthRollsBackAutomatically() async throws {
        let fleet = try await TestFleet.make(faults: ["5.4": "health"], startupGrace: "2s")
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let load = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 4, request: translateRequests)
        await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: "5.4", resume: false) }
        let result = await load.stop()

        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))
        let events = try await fleet.journalEvents()
        #expect(events.contains { $0.kind == .rollbackStarted })
        #expect(events.last?.kind == .failed)
        #expect(events.last?.detail?.contains("did not become healthy") == true)
        // Only the canary was touched.
        #expect(Set(events.filter { $0.kind == .step && $0.release == "5.4" }.compactMap(\.node)) == ["web1"])
        await fleet.cleanup()
    }

    @Test func observeWindowCatchesA500sReleaseAndRollsBack() async throws {
        let fleet = try await TestFleet.make(nodes: 2, faults: ["5.4": "errors"], rollout: "max_unavailable: 1\n  canary: 1\n  observe: 1500ms\n  max_error_rate: 0.05")
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let load = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 4, request: translateRequests)
        do {
            try await fleet.rollout().deploy(release: "5.4", resume: false)
            Issue.record("the deploy should have failed")
        } catch let failure as RolloutFailure {
            #expect(failure.message.contains("rolled back to 5.3"))
            #expect(failure.message.contains("web1-5.4"))
            #expect(failure.message.contains("error rate"))
        }
        _ = await load.stop()
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))
        await fleet.cleanup()
    }

    @Test func aSecondDeployRunsNothingTwice() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let pids = fleet.config.nodes.flatMap { fleet.driver.instances(node: $0.name).map(\.pid) }
        let reporter = CollectingReporter()
        try await fleet.rollout(reporter).deploy(release: "5.3", resume: false)
        #expect(fleet.config.nodes.flatMap { fleet.driver.instances(node: $0.name).map(\.pid) } == pids)
        #expect(reporter.events.filter { $0.step == .skipped }.count == 2)
        await fleet.cleanup()
    }

    @Test func hooksRunWithTheNodeAndAFailingPreDeployHookChangesNothing() async throws {
        let fleet = try await TestFleet.make(
            nodes: 2,
            extra: "hooks:\n  pre_deploy: test \"$BATON_RELEASE\" != 5.4\n  after_node: echo \"$BATON_NODE $BATON_RELEASE\" >> hooks.log"
        )
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let log = try String(contentsOfFile: fleet.directory + "/hooks.log", encoding: .utf8)
        #expect(log.split(separator: "\n").sorted() == ["web1 5.3", "web2 5.3"])
        do {
            try await fleet.rollout().deploy(release: "5.4", resume: false)
            Issue.record("the pre_deploy hook should have stopped the deploy")
        } catch let failure as RolloutFailure {
            #expect(failure.message.contains("hook pre_deploy"))
            #expect(failure.message.contains("exited with status 1"))
        }
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(try await fleet.journalEvents().filter { $0.kind == .deployStarted }.count == 1)
        await fleet.cleanup()
    }

    @Test func aHookThatOverrunsItsTimeoutIsKilledWithWhatItStarted() async throws {
        let fleet = try await TestFleet.make(nodes: 1, extra: "hooks:\n  pre_deploy: echo started; sleep 31.4159 & sleep 31.4159\n  timeout: 1s")
        do {
            try await fleet.rollout().deploy(release: "5.3", resume: false)
            Issue.record("the pre_deploy hook should have timed out")
        } catch let failure as RolloutFailure {
            #expect(failure.message.contains("hook pre_deploy"))
            #expect(failure.message.contains("did not finish within 1s (hooks.timeout) and was killed"))
        }
        // Both sleeps (the hook's own and the one it put in the background) are gone.
        #expect(await eventually(timeout: .seconds(5)) { try! ChildProcess.run(["/usr/bin/pgrep", "-f", "sleep 31.4159"]).status == 1 })
        let log = try String(contentsOfFile: fleet.config.stateDirectory + "/logs/hook-pre_deploy.log", encoding: .utf8)
        #expect(log == "started\n")
        #expect(try await fleet.journalEvents().isEmpty)
        await fleet.cleanup()
    }

    @Test func unknownReleaseIsRefusedBeforeAnythingChanges() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: "9.9", resume: false) }
        #expect(try await fleet.releases().values.allSatisfy { $0.isEmpty })
        #expect(try await fleet.journalEvents().isEmpty)
        await fleet.cleanup()
    }

    /// The compat pre-flight: an incompatible OpenAPI document refuses the deploy before any node
    /// is touched; --force deploys anyway; a compatible one passes with its verdict said.
    @Test func incompatibleOpenAPIRefusesTheDeployUnlessForced() async throws {
        let old = """
            openapi: 3.1.0
            info: {title: translate, version: "5.3"}
            paths:
              /api/notes: {post: {responses: {"201": {description: saved}}}}
              /api/projects: {get: {responses: {"200": {description: ok, content: {application/json: {schema: {type: array}}}}}}}
            """
        let new = old.replacingOccurrences(of: "  /api/notes: {post: {responses: {\"201\": {description: saved}}}}\n", with: "")
        let fleet = try await TestFleet.make(nodes: 2, openapi: ["5.3": old, "5.4": new])
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        do {
            try await fleet.rollout().deploy(release: "5.4", resume: false)
            Issue.record("an incompatible release must be refused")
        } catch let failure as RolloutFailure {
            #expect(failure.message.hasPrefix("release 5.4 is not compatible with 5.3: 1 ERR finding, first: backward operation-removed POST /api/notes"), "\(failure.message)")
            #expect(failure.message.hasSuffix("or deploy with --force"))
        }
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(try await fleet.journalEvents().filter { $0.kind == .deployStarted }.count == 1)

        let reporter = CollectingReporter()
        try await fleet.rollout(reporter).deploy(release: "5.4", resume: false, force: true)
        #expect(try await fleet.everyNodeRuns("5.4"))
        #expect(reporter.events.contains { $0.detail?.hasPrefix("deploying anyway (--force): 1 ERR finding") == true })

        // Back to 5.3: removing nothing, adding an operation, is a forward WARN only.
        let back = CollectingReporter()
        try await fleet.rollout(back).deploy(release: "5.3", resume: false)
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(back.events.contains { $0.detail == "compat openapi 5.4 → 5.3: compatible both ways: roll out in any order" })
        await fleet.cleanup()
    }
}
