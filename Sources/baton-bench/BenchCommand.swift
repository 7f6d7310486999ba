import ArgumentParser
import BatonCore
import BatonRollout
import BatonTesting
import Foundation

/// Benchmarks that need Baton's own pieces; the scripts under benchmarks/ run them.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-bench",
        abstract: "Benchmarks behind benchmarks/*.sh.",
        subcommands: [RolloutBench.self]
    )
}

struct RolloutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "A 4-node deploy at a fixed request rate: wall time against its node steps, p99 during against steady.",
        discussion: "Example: baton-bench rollout --rate 200 --steady 5"
    )

    @Option(help: "Nodes in the fleet.") var nodes = 4
    @Option(help: "Requests per second during the run.") var rate = 200
    @Option(help: "Seconds of steady load before the deploy.") var steady = 5.0

    struct Row {
        var mode: String
        var wall: Double
        var unavoidable: Double
        var steadyP99: Double
        var rolloutP99: Double
        var requests: Int
        var failed: Int
    }

    func run() async throws {
        var rows: [Row] = []
        for surge in [false, true] {
            rows.append(try await measure(surge: surge))
        }
        print("")
        print("\(nodes) nodes, \(rate) req/s open-model load through baton proxy, observe 0s, max_unavailable 1\(rows.count > 1 ? " / max_surge 1" : "")")
        print("mode        wall s  node steps s  wall/steps  steady p99 ms  rollout p99 ms  p99 ratio  requests  failed")
        for row in rows {
            print(row.mode.padding(toLength: 10, withPad: " ", startingAt: 0) + String(
                format: " %7.2f %13.2f %10.2fx %14.1f %15.1f %9.2fx %9d %7d",
                row.wall, row.unavoidable, row.wall / max(row.unavoidable, 0.001),
                row.steadyP99 * 1000, row.rolloutP99 * 1000, row.rolloutP99 / max(row.steadyP99, 0.000001), row.requests, row.failed
            ))
        }
    }

    func measure(surge: Bool) async throws -> Row {
        let policy = surge ? "max_unavailable: 1\n  max_surge: 1\n  canary: 1\n  observe: 0s" : "max_unavailable: 1\n  canary: 1\n  observe: 0s"
        let fleet = try await TestFleet.make(nodes: nodes, rollout: policy, health: "interval: 100ms\n  timeout: 1s\n  rise: 2\n  min_ready: 500ms")
        do {
            try await fleet.rollout().deploy(release: "5.3", resume: false)
            let load = RateLoad.start(against: fleet.proxy.endpoint, perSecond: rate) { index in
                index % 3 == 0 ? HTTPRequest(.GET, "/") : HTTPRequest(.GET, "/api/projects")
            }
            try await Task.sleep(for: .milliseconds(Int(steady * 1000)))
            let deployStart = load.elapsed
            try await fleet.rollout().deploy(release: "5.4", resume: false)
            let deployEnd = load.elapsed
            try await Task.sleep(for: .seconds(1))
            let samples = await load.stop()

            let deployment = try DeployJournal(path: fleet.config.stateDirectory + "/journal.jsonl").deployments().last!
            let row = Row(
                mode: surge ? "surge" : "no surge",
                wall: deployEnd - deployStart,
                unavoidable: Self.nodeSteps(deployment.events),
                steadyP99: RateLoad.percentile(0.99, of: samples, from: 0, to: deployStart),
                rolloutP99: RateLoad.percentile(0.99, of: samples, from: deployStart, to: deployEnd),
                requests: samples.count,
                failed: samples.filter(\.failed).count
            )
            print("\(row.mode): deploy took \(String(format: "%.2f", row.wall))s, \(row.failed) of \(row.requests) requests failed")
            await fleet.cleanup()
            return row
        } catch {
            await fleet.cleanup()
            throw error
        }
    }

    /// The time the nodes' own steps take: for each node from its first step to `done`, summed
    /// (batches of one node run one after another).
    static func nodeSteps(_ events: [RolloutEvent]) -> Double {
        var first: [String: Date] = [:]
        var total = 0.0
        for event in events where event.kind == .step {
            guard let node = event.node else { continue }
            if first[node] == nil { first[node] = event.time }
            if event.step == .done, let start = first[node] { total += event.time.timeIntervalSince(start) }
        }
        return total
    }
}
