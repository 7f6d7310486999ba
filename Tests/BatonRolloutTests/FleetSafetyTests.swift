import BatonCore
import BatonProxy
@testable import BatonRollout
import BatonTesting
import Foundation
import Testing

/// The mistakes a new user makes with a real fleet (TranslateApp processes, a live proxy):
/// something else on a node's port, health checks that disagree, a wrong health path, a crashed
/// instance, a node that leaves. Each ends in one line and a fleet that still serves.
@Suite(.serialized) struct FleetSafetyTests {
    /// A process that is not Baton's, listening on `port` (a real server, as a user would have).
    func foreignServer(port: Int, directory: String) async throws -> pid_t {
        let pid = try ChildProcess.spawn(["/usr/bin/env", "python3", "-m", "http.server", String(port), "--bind", "127.0.0.1"], output: directory + "/foreign.log", detached: false)
        for _ in 0..<200 where PortListener.local(port: port) == nil { try await Task.sleep(for: .milliseconds(25)) }
        return pid
    }

    func reap(_ pid: pid_t) {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    @Test func aForeignListenerOnANodesPortIsRefusedBeforeAnythingChanges() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        let port = fleet.config.nodes[1].port
        let foreign = try await foreignServer(port: port, directory: fleet.directory)
        defer { reap(foreign) }
        let error = await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: "5.3", resume: false) }
        let message = error?.message ?? ""
        #expect(message.contains("web2: port \(port) is in use by pid \(foreign)"), "\(message)")
        #expect(message.contains("http.server"), "\(message)")
        #expect(!message.contains("\n"))
        // Nothing started, nothing journaled, nothing on the proxy.
        #expect(try await fleet.releases().values.allSatisfy { $0.isEmpty })
        #expect(try await fleet.journalEvents().isEmpty)
        #expect(fleet.proxy.server.pool.list().isEmpty)
        let plan = try await fleet.rollout().plan(release: "5.3")
        #expect(plan.isRefused)
        #expect(plan.lines.contains { $0.hasPrefix("REFUSED: web2: port \(port)") })
        // `baton plan` fails too, so CI can run it before deploying.
        let cli = try CrashResumeTests().baton(fleet, ["plan", "5.3"], json: false)
        #expect(cli.status == 1, "\(cli.output)")
        #expect(cli.output.contains("REFUSED: web2: port \(port)"), "\(cli.output)")
        await fleet.cleanup()
    }

    @Test func aStaleInstanceOfTheOldReleaseIsNeitherAdmittedNorHidden() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        // web1's instance is stopped behind Baton's back and an old 5.3 started by hand in its place.
        let web1 = fleet.config.nodes[0]
        let recorded = try #require(fleet.driver.instances(node: "web1").first)
        try await fleet.driver.stop(recorded, signal: SIGTERM, grace: .seconds(5))
        let stale = try ChildProcess.spawn([try BuiltProducts.path("TranslateApp"), "--release", "5.3", "--port", String(web1.port)], output: fleet.directory + "/stale.log", detached: false)
        defer { reap(stale) }
        for _ in 0..<200 where PortListener.local(port: web1.port) == nil { try await Task.sleep(for: .milliseconds(25)) }

        let status = try await FleetStatus.gather(fleet.rollout())
        #expect(status.nodes[0].foreignListener?.contains("pid \(stale)") == true, "\(status.render())")
        #expect(status.render().contains("MISMATCH"))
        let error = await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: "5.4", resume: false) }
        #expect(error?.message.contains("web1: port \(web1.port) is in use by pid \(stale)") == true, "\(error?.message ?? "")")
        #expect(!fleet.proxy.server.pool.list().contains { $0.name.hasSuffix("-5.4") })
        await fleet.cleanup()
    }

    @Test func theProxyChecksWhatBatonYmlSaysNotItsOwnDefault() async throws {
        // The proxy was started with a health path the app does not have: the deploy's own
        // check goes with every backend it admits, so the two cannot disagree.
        let fleet = try await TestFleet.make(nodes: 2, proxyHealthPath: "/healthz-that-does-not-exist")
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        #expect(fleet.proxyServesOnly("5.3"))
        let backends = fleet.proxy.server.pool.list()
        #expect(backends.allSatisfy { $0.health?.path == "/up" && $0.health?.rise == 2 }, "\(backends)")
        // A backend added by hand gets the proxy's default, and says why it is not ready.
        let port = try LocalPort.free()
        let app = try ChildProcess.spawn([try BuiltProducts.path("TranslateApp"), "--release", "5.3", "--port", String(port)], output: fleet.directory + "/by-hand.log", detached: false)
        defer { reap(app) }
        _ = try await fleet.proxy.admin.add(name: "by-hand", address: "127.0.0.1:\(port)", wait: false)
        #expect(await eventually { fleet.proxy.server.pool.info(name: "by-hand")?.lastFailure == "GET /healthz-that-does-not-exist answered 404" })
        let gone = try LocalPort.free()
        _ = try await fleet.proxy.admin.add(name: "nobody", address: "127.0.0.1:\(gone)", wait: false)
        #expect(await eventually { fleet.proxy.server.pool.info(name: "nobody")?.lastFailure?.hasSuffix("Connection refused") == true },
                "\(fleet.proxy.server.pool.info(name: "nobody")?.lastFailure ?? "-")")
        await fleet.cleanup()
    }

    @Test func aWrongHealthPathRollsBackWithThePreviousReleasesRecordedCheck() async throws {
        let fleet = try await TestFleet.make(nodes: 3)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        // baton.yml edited for 5.4 with a path the app does not serve.
        var wrong = fleet.config
        wrong.health.check.path = "/ready"
        wrong.health.startupGrace = .seconds(2)
        let error = await #expect(throws: RolloutFailure.self) { try await Rollout(config: wrong, reporter: CollectingReporter()).deploy(release: "5.4", resume: false) }
        #expect(error?.message.contains("rolled back to 5.3") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("GET /ready answered 404") == true, "\(error?.message ?? "")")
        #expect(error?.reported == true)
        // Every node serves 5.3 again, checked on /up as 5.3 was deployed.
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"), "\(fleet.proxy.server.pool.list())")
        #expect(fleet.proxy.server.pool.list().allSatisfy { $0.health?.path == "/up" })
        #expect(try await DeployJournal(path: fleet.config.stateDirectory + "/journal.jsonl").interrupted() == nil)
        await fleet.cleanup()
    }

    @Test func rollbackRunsTheReleaseAsItWasDeployed() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        // By now baton.yml describes only a newer release: another start command, another path.
        var today = fleet.config
        today.release.start = "/bin/false"
        today.health.check.path = "/v6/health"
        try await Rollout(config: today, reporter: CollectingReporter()).rollback(to: nil)
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))
        #expect(fleet.proxy.server.pool.list().allSatisfy { $0.health?.path == "/up" })
        await fleet.cleanup()
    }

    @Test func aKilledInstanceIsRestartedAndReadmittedWithoutFailingARequest() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let load = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 4) { _, _ in HTTPRequest(.GET, "/") }
        try await Task.sleep(for: .milliseconds(300))
        let instance = try #require(fleet.driver.instances(node: "web1").first)
        let app = try #require(PortListener.local(port: instance.port)?.pids.first)
        #expect(app != instance.pid, "the app runs under its supervisor")
        kill(app, SIGKILL)
        // Taken out by the proxy, restarted by the supervisor (1 s), checked back in.
        #expect(try await eventually(timeout: .seconds(10)) { fleet.driver.instances(node: "web1").first?.restarts == 1 })
        #expect(try await eventually(timeout: .seconds(10)) {
            fleet.proxy.server.pool.info(name: "web1-5.3")?.state == .ready && PortListener.local(port: instance.port)?.pids.first != app
        })
        try await Task.sleep(for: .milliseconds(300))
        let result = await load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.byBackend["web1-5.3", default: 0] > 0 && result.byBackend["web2-5.3", default: 0] > 0)
        let status = try await FleetStatus.gather(fleet.rollout())
        #expect(status.nodes[0].instances.first?.restarts == 1)
        #expect(status.render().contains("restarted 1x"), "\(status.render())")
        await fleet.cleanup()
    }

    @Test func aNodeLeavesWithNodeRemoveAndJoinsByDeploying() async throws {
        let fleet = try await TestFleet.make(nodes: 3)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let lines = try await fleet.rollout().removeNode("web3")
        #expect(lines.contains { $0.hasPrefix("stopped web3 5.3") }, "\(lines)")
        #expect(lines.last?.contains("still in") == true)
        #expect(fleet.driver.instances(node: "web3").isEmpty)
        #expect(!fleet.proxy.server.pool.list().contains { $0.name.hasPrefix("web3-") })
        #expect(fleet.proxy.server.pool.list().count == 2)
        await #expect(throws: RolloutFailure.self) { try await fleet.rollout().removeNode("web3") }

        // A fourth node added to baton.yml joins with the next deploy of the running release.
        let port = try LocalPort.free()
        let yaml = try String(contentsOfFile: fleet.configPath, encoding: .utf8)
            .replacingOccurrences(of: "nodes:\n", with: "nodes:\n  - { name: web4, port: \(port) }\n")
        try yaml.write(toFile: fleet.configPath, atomically: true, encoding: .utf8)
        let grown = try BatonConfig.load(path: fleet.configPath)
        let reporter = CollectingReporter()
        try await Rollout(config: grown, reporter: reporter).deploy(release: "5.3", resume: false)
        #expect(fleet.driver.instances(node: "web4").map(\.release) == ["5.3"])
        #expect(fleet.proxy.server.pool.info(name: "web4-5.3")?.state == .ready)
        #expect(reporter.events.filter { $0.step == .skipped }.count == 2, "the nodes already on 5.3 are left alone")
        await fleet.cleanup()
    }

    @Test func aFailedDeployIsReportedOnceOnTheCommandLine() async throws {
        let fleet = try await TestFleet.make(nodes: 2, faults: ["5.4": "health"], startupGrace: "1s")
        let first = try CrashResumeTests().baton(fleet, ["deploy", "5.3"], json: false)
        #expect(first.status == 0, "\(first.output)")
        let failed = try CrashResumeTests().baton(fleet, ["deploy", "5.4"], json: false)
        #expect(failed.status != 0)
        #expect(failed.output.components(separatedBy: "FAILED").count == 2, "\(failed.output)")
        #expect(!failed.output.contains("Error:"), "\(failed.output)")
        #expect(try await fleet.everyNodeRuns("5.3"))
        await fleet.cleanup()
    }

    @Test func resumeSaysWhatItWillFinish() {
        let started = RolloutEvent(deployment: "d-1", kind: .deployStarted, target: "B", previous: "A", nodes: ["web1"], isRollback: false)
        let rollingBack = RolloutEvent(deployment: "d-1", kind: .rollbackStarted, release: "A", detail: "web1: did not become healthy")
        let deploying = DeployJournal.Deployment(id: "d-1", target: "B", previous: "A", nodes: ["web1"], isRollback: false, events: [started])
        #expect(Rollout.resumeSummary(deploying) == "resuming d-1: the deployment to B")
        var back = deploying
        back.events.append(rollingBack)
        #expect(Rollout.resumeSummary(back) == "resuming d-1: the rollback to A of the deployment to B (web1: did not become healthy)")
    }
}
