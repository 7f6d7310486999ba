import ArgumentParser
import BatonCore
import BatonRollout
import BatonTesting
import Foundation

/// The rollout over SSH: hosts in network namespaces, each with its own sshd.
struct HostsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout-hosts",
        abstract: "A deploy across SSH hosts (network namespaces with their own sshd): wall time against the node steps, SSH cost on its own.",
        discussion: """
            Needs root. Each deploy ships a release (a run script and a payload file) to every host, then upgrades the hosts in batches of --batch, at most --parallel at once. "node steps" is the critical path of the nodes' own work: for each batch, the longest node from its first step to done, summed over the batches. SSH columns count what this process spent on SSH: commands on the multiplexed connection (each a round trip), the rsync copies, and new master connections.

            Example: baton-bench rollout-hosts --hosts 8 --parallel 4 --repeat 3
            """
    )

    @Option(help: "Hosts (one node each).") var hosts = 8
    @Option(help: "rollout.max_unavailable: nodes per batch.") var batch = 4
    @Option(help: "rollout.max_parallel_hosts.") var parallel = 4
    @Option(help: "Deploys, one after another (5.3 → 5.4 → 5.3 …).") var `repeat` = 3
    @Option(help: "Megabytes of payload in each release.") var payload = 16

    func run() async throws {
        guard NamespaceHosts.available else { throw ValidationError("needs root, sshd and iproute2 (the hosts are network namespaces)") }
        let namespaceHosts = try await NamespaceHosts.make(count: hosts)
        defer { namespaceHosts.remove() }
        let rollout = "max_unavailable: \(batch)\n  canary: 1\n  observe: 0s\n  max_parallel_hosts: \(parallel)"
        let fleet = try await TestFleet.make(
            rollout: rollout, health: "interval: 100ms\n  timeout: 1s\n  rise: 2\n  min_ready: 500ms", hosts: namespaceHosts,
            payload: payload << 20
        )
        do {
            try await measure(fleet)
        } catch {
            await fleet.cleanup()
            throw error
        }
        await fleet.cleanup()
    }

    func measure(_ fleet: TestFleet) async throws {
        try await fleet.rollout(PlainReporter()).deploy(release: "5.3", resume: false)

        print("")
        print("\(hosts) SSH hosts, batches of \(batch) (canary 1), max_parallel_hosts \(parallel), \(payload) MB release")
        print("deploy  wall s  node steps s  wall/steps  ship s  ssh cmds  ms/cmd  ssh ms/step  rsync copies  ms/copy  new conns")
        for round in 0..<`repeat` {
            let before = SSHStatistics.shared.current
            let start = ContinuousClock.now
            let startDate = Date()
            // The reporter's events keep their times to the microsecond (the journal's, to the second).
            let reporter = CollectingReporter()
            try await fleet.rollout(reporter).deploy(release: round % 2 == 0 ? "5.4" : "5.3", resume: false)
            let wall = (ContinuousClock.now - start).seconds
            let after = SSHStatistics.shared.current
            let events = reporter.events
            let steps = Self.criticalPath(events)
            // Pre-flight and shipping happen before the deployment's first event.
            let ship = events.first { $0.kind == .deployStarted }?.time.timeIntervalSince(startDate) ?? 0
            let commands = after.commands - before.commands
            let copies = after.copies - before.copies
            let nodeSteps = events.filter { $0.kind == .step }.count
            print(String(
                format: "%6d %7.2f %13.2f %10.2fx %7.2f %9d %7.1f %12.1f %13d %8.1f %10d",
                round + 1, wall, steps, wall / max(steps, 0.001), max(0, ship), commands,
                commands > 0 ? (after.commandTime - before.commandTime).seconds * 1000 / Double(commands) : 0,
                nodeSteps > 0 ? (after.commandTime - before.commandTime).seconds * 1000 / Double(nodeSteps) : 0,
                copies, copies > 0 ? (after.copyTime - before.copyTime).seconds * 1000 / Double(copies) : 0,
                after.connects - before.connects
            ))
        }
        var trips: [Double] = []
        for _ in 0..<50 { trips.append(try await FleetDriver(config: fleet.config).ssh.roundTrip(node: "web1").seconds * 1000) }
        trips.sort()
        print(String(format: "one SSH round trip on the master connection (`true` on web1, 50 times): median %.1f ms, p90 %.1f ms", trips[25], trips[45]))
        print("(ship s: from the command to the deployment's first journal event: pre-flight checks of every host and the copies; ms/cmd: one SSH round trip on the multiplexed connection, the script's own work included; ssh ms/step: all SSH command time of the deploy divided by its node steps (draining … done), the SSH cost a node step carries)")
    }

    /// For each batch (nodes whose steps overlap), the longest node from its first step to
    /// done; summed.
    static func criticalPath(_ events: [RolloutEvent]) -> Double {
        var spans: [(start: Date, end: Date)] = []
        var first: [String: Date] = [:]
        for event in events where event.kind == .step {
            guard let node = event.node else { continue }
            if first[node] == nil { first[node] = event.time }
            if event.step == .done || event.step == .skipped, let start = first[node] { spans.append((start, event.time)) }
        }
        var total = 0.0
        var batchEnd: Date?
        var batchStart: Date?
        for span in spans.sorted(by: { $0.start < $1.start }) {
            if let end = batchEnd, span.start < end {
                batchEnd = max(end, span.end)
            } else {
                if let start = batchStart, let end = batchEnd { total += end.timeIntervalSince(start) }
                batchStart = span.start
                batchEnd = span.end
            }
        }
        if let start = batchStart, let end = batchEnd { total += end.timeIntervalSince(start) }
        return total
    }
}
