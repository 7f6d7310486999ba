import ArgumentParser
import BatonTesting

/// A small HTTP server for trying the proxy by hand (README, scripts/demo): the same
/// `TestBackend` the tests use.
@main
struct TestBackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton-test-backend",
        abstract: "Serve 'hello from NAME' (and /up, /echo, /download, /upload) on 127.0.0.1.",
        discussion: "Example: baton-test-backend --name web1 --port 3001"
    )

    @Option(help: "Name it answers with.") var name = "backend"
    @Option(help: "Port on 127.0.0.1 (0 picks a free one).") var port = 0

    func run() async throws {
        let backend = try await TestBackend.start(name: name, port: port)
        print("\(name) listening on \(backend.address)")
        try await Task.sleep(for: .seconds(365 * 24 * 3600))
    }
}
