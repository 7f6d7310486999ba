import BatonCore
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// The orchestrator as a real process, SIGKILLed right after it announced each kind of step.
@Suite(.serialized) struct CrashResumeTests {
    /// Runs `baton ARGS --config …` (with `--json` unless told otherwise); with `killAfter`,
    /// SIGKILLs it as soon as it reports that step.
    @discardableResult
    func baton(_ fleet: TestFleet, _ arguments: [String], json: Bool = true, killAfter step: RolloutEvent.Step? = nil) throws -> (status: Int32, output: String) {
        try BatonCLI.run(arguments + ["--config", fleet.configPath] + (json ? ["--json"] : []), killAfter: step)
    }

    static let cases: [(RolloutEvent.Step, String)] = [
        (.draining, "resume"), (.drained, "rollback"), (.stopping, "resume"), (.stopped, "rollback"), (.starting, "resume"),
        (.warming, "rollback"), (.admitting, "resume"), (.admitted, "rollback"), (.done, "resume"),
    ]

    @Test(arguments: cases)
    func killedAfterAStepThenRecovered(step: RolloutEvent.Step, recovery: String) async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)

        let killed = try baton(fleet, ["deploy", "5.4"], killAfter: step)
        #expect(killed.status != 0, "the deploy was not killed after \(step)")

        let refused = try baton(fleet, ["deploy", "5.4"])
        #expect(refused.status != 0)
        #expect(refused.output.contains("was interrupted"), "\(refused.output)")

        if recovery == "resume" {
            let resumed = try baton(fleet, ["deploy", "--resume"])
            #expect(resumed.status == 0, "\(resumed.output)")
            #expect(try await fleet.everyNodeRuns("5.4"))
            #expect(fleet.proxyServesOnly("5.4"), "\(fleet.proxy.server.pool.list())")
            // Resuming twice is safe: nothing left to do.
            #expect(try baton(fleet, ["deploy", "--resume"]).output.contains("no interrupted deployment"))
        } else {
            let rolledBack = try baton(fleet, ["rollback"])
            #expect(rolledBack.status == 0, "\(rolledBack.output)")
            #expect(try await fleet.everyNodeRuns("5.3"))
            #expect(fleet.proxyServesOnly("5.3"), "\(fleet.proxy.server.pool.list())")
        }
        #expect(try await DeployJournal(path: fleet.config.stateDirectory + "/journal.jsonl").interrupted() == nil)
        await fleet.cleanup()
    }

    @Test func badConfigStartsNothing() async throws {
        let fleet = try await TestFleet.make(nodes: 2)
        let broken = try String(contentsOfFile: fleet.configPath, encoding: .utf8).replacingOccurrences(of: "rise: 2", with: "rise: many")
        try broken.write(toFile: fleet.configPath, atomically: true, encoding: .utf8)
        let result = try baton(fleet, ["deploy", "5.4"])
        #expect(result.status != 0)
        let lines = result.output.split(separator: "\n")
        #expect(lines.count == 1, "\(result.output)")
        #expect(result.output.contains("baton.yml:"))
        #expect(result.output.contains("health.rise: expected a whole number of 1 or more, got 'many'"))
        #expect(try await fleet.releases().values.allSatisfy { $0.isEmpty })
        #expect(fleet.proxy.server.pool.list().isEmpty)
        await fleet.cleanup()
    }
}
