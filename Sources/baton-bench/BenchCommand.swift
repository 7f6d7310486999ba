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
        subcommands: [RolloutBench.self, HostsBench.self]
    )
}

struct RolloutBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "A 4-node deploy at a fixed request rate: wall time against its node steps, p99 during against steady.",
        discussion: """
            The load mixes GET, POST and PUT (with bodies) on new and keep-alive connections, plus WebSocket users on TranslateApp's live channel (one per 100 req/s unless --websockets says otherwise: with a user making about a request a second, one WebSocket per 100 users), each sending a message every 500 ms and waiting for its echo. Stopping waits for requests in flight, so only requests that really failed (a 5xx or a broken connection) count; a WebSocket fails when its handshake is refused or it ends without a 1001/1012 close frame or an echo is missing. Each failure is printed with its status, X-Baton-Error (or reason) and time.

            Example: baton-bench rollout --rate 2000 --repeat 20
            """
    )

    @Option(help: "Nodes in the fleet.") var nodes = 4
    @Option(help: "Requests per second during the run.") var rate = 200
    @Option(help: "Seconds of steady load before the deploy.") var steady = 5.0
    @Option(help: "Deploys per mode, one after another (5.3 → 5.4 → 5.3 …).") var `repeat` = 1
    @Option(help: "WebSocket users (default: one per 100 req/s).") var websockets: Int?

    struct Row {
        var mode: String
        var wall: Double
        var unavoidable: Double
        var steadyP99: Double
        var rolloutP99: Double
        var requests: Int
        var failed: Int
        var deploys: Int
        var sockets: WebSocketLoad.Result
    }

    func run() async throws {
        var rows: [Row] = []
        for surge in [false, true] {
            rows.append(try await measure(surge: surge))
        }
        print("")
        print("\(nodes) nodes, \(rate) req/s open-model load and \(webSocketUsers) WebSocket users through baton proxy, observe 0s, max_unavailable 1\(rows.count > 1 ? " / max_surge 1" : "")")
        print("mode        deploys  wall s  node steps s  wall/steps  steady p99 ms  rollout p99 ms  p99 ratio  requests  ws sockets  ws msgs  ws 1001s  failed")
        for row in rows {
            print(row.mode.padding(toLength: 10, withPad: " ", startingAt: 0) + String(
                format: " %7d %7.2f %13.2f %10.2fx %14.1f %15.1f %9.2fx %9d %11d %8d %9d %7d",
                row.deploys, row.wall, row.unavoidable, row.wall / max(row.unavoidable, 0.001),
                row.steadyP99 * 1000, row.rolloutP99 * 1000, row.rolloutP99 / max(row.steadyP99, 0.000001), row.requests,
                row.sockets.sessions, row.sockets.acknowledged, row.sockets.politeCloses, row.failed
            ))
        }
        print("(wall s, node steps s and p99s are per deploy, the median over the deploys; requests, ws sockets (opened, reconnects included), ws msgs (acknowledged), ws 1001s (sockets the proxy closed for a drain) and failed (requests and WebSockets) are totals)")
    }

    /// GET, POST and PUT with bodies, on new and keep-alive connections.
    static func mixedRequest(_ index: Int) -> (HTTPRequest, RateLoad.Connection) {
        switch index % 6 {
        case 0: (HTTPRequest(.GET, "/"), .new)
        case 1: (HTTPRequest(.POST, "/api/notes", headers: ["content-type": "application/json"], body: #"{"text":"note \#(index)"}"#), .keepAlive)
        case 2: (HTTPRequest(.PUT, "/api/segments/\(index % 50)", headers: ["content-type": "application/json"], body: #"{"target":"Hallo \#(index)"}"#), .new)
        default: (HTTPRequest(.GET, "/api/projects"), .keepAlive)
        }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    var webSocketUsers: Int { websockets ?? max(1, rate / 100) }

    func measure(surge: Bool) async throws -> Row {
        let policy = surge ? "max_unavailable: 1\n  max_surge: 1\n  canary: 1\n  observe: 0s" : "max_unavailable: 1\n  canary: 1\n  observe: 0s"
        let fleet = try await TestFleet.make(nodes: nodes, rollout: policy, health: "interval: 100ms\n  timeout: 1s\n  rise: 2\n  min_ready: 500ms")
        var load: RateLoad?
        var sockets: WebSocketLoad?
        do {
            try await fleet.rollout().deploy(release: "5.3", resume: false)
            load = RateLoad.start(against: fleet.proxy.endpoint, perSecond: rate, request: Self.mixedRequest)
            let load = load!
            sockets = WebSocketLoad.start(against: fleet.proxy.endpoint, users: webSocketUsers, path: "/api/live", since: load.start)
            let sockets = sockets!
            try await Task.sleep(for: .milliseconds(Int(steady * 1000)))
            var windows: [(start: Double, end: Double)] = []
            for round in 0..<`repeat` {
                let start = load.elapsed
                try await fleet.rollout().deploy(release: round % 2 == 0 ? "5.4" : "5.3", resume: false)
                windows.append((start, load.elapsed))
                try await Task.sleep(for: .seconds(1))
            }
            let samples = await load.stop()
            let socketResult = await sockets.stop()
            let deployments = try await DeployJournal(path: fleet.config.stateDirectory + "/journal.jsonl").deployments().suffix(`repeat`)
            let failures = (samples.filter(\.failed) + socketResult.failures).sorted { $0.due < $1.due }
            let row = Row(
                mode: surge ? "surge" : "no surge",
                wall: Self.median(windows.map { $0.end - $0.start }),
                unavoidable: Self.median(deployments.map { Self.nodeSteps($0.events) }),
                steadyP99: RateLoad.percentile(0.99, of: samples, from: 0, to: windows[0].start),
                rolloutP99: Self.median(windows.map { RateLoad.percentile(0.99, of: samples, from: $0.start, to: $0.end) }),
                requests: samples.count,
                failed: failures.count,
                deploys: `repeat`,
                sockets: socketResult
            )
            print("\(row.mode): \(`repeat`) deploy(s), median \(String(format: "%.2f", row.wall))s, \(row.failed) failed of \(row.requests) requests and \(socketResult.sessions) WebSockets (\(socketResult.acknowledged) messages)")
            for failure in failures.prefix(50) {
                let during = windows.firstIndex { failure.due >= $0.start && failure.due < $0.end }.map { "deploy \($0 + 1)" } ?? "between deploys"
                print(String(format: "  failed at %.3fs (%@): %@ → %@ %@", failure.due, during, failure.request, failure.status.map(String.init) ?? "no response", failure.error ?? ""))
            }
            await fleet.cleanup()
            return row
        } catch {
            _ = await load?.stop()
            _ = await sockets?.stop()
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
