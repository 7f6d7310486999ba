import BatonCore
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// `state: postgres://…`: the journal, history and deploy lock in a real PostgreSQL server,
/// shared by deploys started from different working directories (as different CI runners or
/// laptops would), each a real `baton` process.
@Suite(.serialized) struct PostgresStateTests {
    /// A second working directory for the same service: its own baton.yml (state_dir there)
    /// and release store, the same nodes, proxies and PostgreSQL state.
    func secondCheckout(of fleet: TestFleet) throws -> String {
        let directory = fleet.directory + "/other-checkout"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let yaml = try String(contentsOfFile: fleet.configPath, encoding: .utf8)
            .replacingOccurrences(of: "state_dir: .baton", with: "state_dir: \(directory)/.baton")
        try yaml.write(toFile: directory + "/baton.yml", atomically: true, encoding: .utf8)
        let store = ReleaseStore(stateDirectory: directory + "/.baton")
        for release in ["5.3", "5.4"] { try store.add(source: "\(fleet.directory)/artifacts/\(release)", id: release, keep: 5, protected: []) }
        return directory
    }

    @Test func aSecondDeployIsRefusedNamingTheHolderAndHistoryIsShared() async throws {
        let database = try await PostgresCluster.start(under: TemporaryDirectory.make(prefix: "baton-state"))
        defer { database.stop() }
        let fleet = try await TestFleet.make(nodes: 2, extra: "state: \(database.url())\nhooks:\n  before_node: sleep 1")
        let other = try secondCheckout(of: fleet)

        // The first deploy, from the fleet's directory, holds the lock for a few seconds.
        let first = try BatonCLI.start(["deploy", "5.3"], in: fleet.directory)
        let store = PostgresStateStore(url: database.url(), service: "translate")
        let held = try await eventually(timeout: .seconds(10)) { try await store.lockHolder() != nil }
        #expect(held)

        let refused = try BatonCLI.run(["deploy", "5.3"], in: other)
        #expect(refused.status != 0)
        #expect(refused.output.contains("holds the lock"), "\(refused.output)")
        #expect(refused.output.contains("deploy 5.3, in \(fleet.directory))"), "\(refused.output)")
        #expect(refused.output.split(separator: "\n").count == 1, "\(refused.output)")
        let status = try BatonCLI.run(["lock", "status"], in: other)
        #expect(status.output.hasPrefix("held by ") && status.output.contains(fleet.directory), "\(status.output)")

        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(try BatonCLI.run(["lock", "status"], in: other).output.hasPrefix("free"))
        // The other checkout sees the deployment it did not run: it is the service's history.
        let history = try BatonCLI.run(["history", "--json"], in: other)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let entries = try decoder.decode([HistoryEntry].self, from: Data(history.output.utf8))
        #expect(entries.map(\.release) == ["5.3"])
        #expect(entries.first?.outcome == .finished)
        #expect(entries.first?.by?.contains("@") == true)
        // And which Baton ran it.
        #expect(entries.first?.baton == BatonVersion.description)
        // The journal is in the database, not in either state directory.
        #expect(!FileManager.default.fileExists(atPath: fleet.config.stateDirectory + "/journal.jsonl"))
        #expect(!FileManager.default.fileExists(atPath: other + "/.baton/journal.jsonl"))
        await fleet.cleanup()
    }

    /// A holder that is stuck (stopped, its connection open) keeps the lock until `baton lock
    /// release` ends its database session.
    @Test func aStuckHoldersLockCanBeReleased() async throws {
        let database = try await PostgresCluster.start(under: TemporaryDirectory.make(prefix: "baton-state"))
        defer { database.stop() }
        let fleet = try await TestFleet.make(nodes: 1, extra: "state: \(database.url())\nhooks:\n  before_node: sleep 30")
        let other = try secondCheckout(of: fleet)
        let process = try BatonCLI.start(["deploy", "5.3"], in: fleet.directory)
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let store = PostgresStateStore(url: database.url(), service: "translate")
        #expect(try await eventually(timeout: .seconds(10)) { try await store.lockHolder()?.pid == process.processIdentifier })
        kill(process.processIdentifier, SIGSTOP)

        #expect(try BatonCLI.run(["deploy", "5.3"], in: other).output.contains("holds the lock"))
        let released = try BatonCLI.run(["lock", "release"], in: other)
        #expect(released.status == 0, "\(released.output)")
        #expect(released.output.contains("ended the database session of"), "\(released.output)")
        #expect(try await store.lockHolder() == nil)
        #expect(try BatonCLI.run(["lock", "release"], in: other).output.contains("is free"))
        await fleet.cleanup()
    }

    /// The orchestrator is SIGKILLed mid-deploy on a fleet of SSH hosts; another working
    /// directory sees the interrupted deployment and `--resume` finishes it there.
    @Test(.enabled(if: NamespaceHosts.available, "needs root, sshd and iproute2"))
    func aKilledDeployIsResumedFromAnotherWorkingDirectory() async throws {
        let database = try await PostgresCluster.start(under: TemporaryDirectory.make(prefix: "baton-state"))
        defer { database.stop() }
        let hosts = try await NamespaceHosts.make(count: 2)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(extra: "state: \(database.url())", hosts: hosts)
        let other = try secondCheckout(of: fleet)
        #expect(try BatonCLI.run(["deploy", "5.3"], in: fleet.directory).status == 0)

        let killed = try BatonCLI.run(["deploy", "5.4", "--json"], in: fleet.directory, killAfter: .starting, whenOn: "web2")
        #expect(killed.status != 0)
        let refused = try BatonCLI.run(["deploy", "5.4"], in: other)
        #expect(refused.output.contains("was interrupted"), "\(refused.output)")
        let resumed = try BatonCLI.run(["deploy", "--resume"], in: other)
        #expect(resumed.status == 0, "\(resumed.output)")
        #expect(try await fleet.everyNodeRuns("5.4"))
        #expect(fleet.proxyServesOnly("5.4"))
        let history = try BatonCLI.run(["history"], in: fleet.directory)
        #expect(history.output.contains("deploy 5.3 → 5.4"), "\(history.output)")
        await fleet.cleanup()
    }
}
