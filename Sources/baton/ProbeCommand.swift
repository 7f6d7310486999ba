import ArgumentParser
import BatonCore
import BatonDemo
import BatonProbe
import BatonRollout
import Foundation

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Synthetic users that log in and work through a deploy, and prove what went wrong.",
        discussion: """
            Requests start at a fixed rate (open model), each from one of --users virtual users, who log in first and again when logged out. Counts failed requests (transport errors, 5xx), logouts and lost writes (acknowledged writes not found when read back at the end). Writes report.json and report.html (with the deploy's events when --journal is given). Exits 1 when a threshold is broken.

            Examples:
              baton probe --scenario probe.yml --duration 60s --max-failed 0 --max-logouts 0
              baton probe --translate 127.0.0.1:8080 --rate 100 --journal .baton/journal.jsonl --report out/
            """
    )

    @Option(help: "Scenario YAML (base_url, login, logged_out, requests, release_header; see docs/probe-scenario.md).") var scenario: String?
    @Option(help: "Use the built-in TranslateApp scenario against HOST:PORT.") var translate: Endpoint?
    @Option(help: "Virtual users.") var users = 20
    @Option(help: "Requests per second, all users together.") var rate = 50
    @Option(help: "How long to run (e.g. 30s, 2m).") var duration = Duration.seconds(30)
    @Option(help: "Directory for report.json and report.html.") var report = "baton-probe-report"
    @Option(help: "A deploy journal whose events are drawn on the report's time axis.") var journal: String?
    @Option(help: "Fail when more requests fail.") var maxFailed: Int?
    @Option(help: "Fail when more users are logged out.") var maxLogouts: Int?
    @Option(help: "Fail when more writes are lost.") var maxLostWrites: Int?
    @Option(help: "Fail when the p99 latency is higher (e.g. 250ms).") var maxP99: Duration?
    @Flag(help: "Print the result as JSON instead of the summary line.") var json = false

    func run() async throws {
        try await failing {
            let chosen: Scenario
            if let scenario {
                chosen = try Scenario.load(path: scenario)
            } else if let translate {
                chosen = Scenario.translate(baseURL: translate)
            } else {
                throw BatonError(.invalidArgument, "give --scenario FILE or --translate HOST:PORT")
            }
            let started = Date()
            let probe = Probe(scenario: chosen, options: .init(users: users, rate: rate, duration: duration))
            let result = await probe.run()
            var markers: [ReportWriter.Marker] = []
            if let journal { markers = deployMarkers(try await DeployJournal(path: journal).events(), since: started) }
            let writer = ReportWriter()
            try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: true)
            let data = try writer.json(result, markers: markers)
            try data.write(to: URL(fileURLWithPath: report + "/report.json"))
            try writer.html(result, markers: markers, title: "baton probe \(chosen.baseURL)").write(toFile: report + "/report.html", atomically: true, encoding: .utf8)
            if json {
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(result.summary)
                if let note = result.releaseNote { print("note: \(note)") }
                if result.ui.pageLoads > 0 { print("ui: \(result.ui.summary)") }
                for example in result.ui.examples { print("  \(example)") }
                for problem in result.problems.prefix(20) {
                    print(String(format: "  %.3fs %@ %@ → %@ %@", problem.at, problem.outcome.rawValue, problem.request ?? "-",
                                 problem.status == 0 ? "no response" : String(problem.status), problem.error ?? ""))
                }
                print("report: \(report)/report.html")
            }
            let broken = result.violations(of: .init(maxFailed: maxFailed, maxLogouts: maxLogouts, maxLostWrites: maxLostWrites, maxP99: maxP99))
            if !broken.isEmpty { throw BatonError(.conflict, "thresholds broken: " + broken.joined(separator: "; ")) }
        }
    }
}
