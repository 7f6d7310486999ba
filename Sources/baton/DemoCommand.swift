import ArgumentParser
import BatonCore
import BatonDemo
import Foundation

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Upgrade TranslateApp 5.3 → 5.4 on four local servers under load, and prove nobody noticed.",
        discussion: """
            Starts a throwaway PostgreSQL, baton proxy and four TranslateApp 5.3 nodes; synthetic users log in and work while 5.4 is rolled out node by node; prints the summary and writes an HTML report. Everything it started is stopped and removed at the end, also on Ctrl-C. Needs PostgreSQL's initdb/pg_ctl (apt-get install postgresql).

            Examples:
              baton demo              # about a minute after the build
              baton demo --quick      # short, for CI
            """
    )
    @Flag(help: "A short run (for CI).") var quick = false
    @Option(help: "Working directory, removed afterwards.") var directory = ".baton/demo"
    @Option(help: "Where report.html and report.json go.") var report = "baton-demo-report"

    func run() async throws {
        try await failing {
            let absolute = { (path: String) in path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path }
            let demo = Demo(options: .init(quick: quick, directory: absolute(directory), reportDirectory: absolute(report)))
            let task = Task { try await demo.run() }
            // Ctrl-C or SIGTERM: cancel, so the demo stops what it started before we exit.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let sources = [SIGINT, SIGTERM].map { number in
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { task.cancel() }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }
            let outcome = try await task.value
            print("")
            print(outcome.summary)
            print("releases served: \(outcome.releasesServed.joined(separator: ", "))")
            print("report: \(absolute(report))/report.html")
            if !outcome.passed { throw BatonError(.conflict, "the demo saw failures, logouts or lost writes (see the report)") }
        }
    }
}
