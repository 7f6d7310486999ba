import ArgumentParser
import Foundation
import Hummingbird
import PostgresNIO
import Synchronization

/// The demo's translation-management app. One codebase, two releases: `--release 5.3` or
/// `--release 5.4` (5.4 shows translation progress per project, which 5.3 does not). Both serve
/// a WebSocket live channel on `/api/live` (LiveChannel).
///
/// Faults for tests, from the environment variable TRANSLATE_FAULT:
///   health          /up answers 503 (the release never becomes healthy)
///   slow-boot=2s    wait before listening
///   crash-after=N   exit abruptly on the N-th request (health checks not counted)
///   errors          every route but /up answers 500 (healthy, but broken)
@main
struct TranslateApp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "TranslateApp",
        abstract: "The demo translation-management app (releases 5.3 and 5.4).",
        discussion: "Example: TranslateApp --release 5.4 --port 3001"
    )

    @Option(help: "Which release to behave as: 5.3 or 5.4.") var release: String
    @Option(help: "Port on --host.") var port: Int = 3000
    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "postgres://USER@HOST:PORT/DATABASE for projects, sessions and notes (default: memory).")
    var databaseURL: String?

    func validate() throws {
        guard Release(rawValue: release) != nil else {
            throw ValidationError("--release '\(release)': expected 5.3 or 5.4")
        }
    }

    func run() async throws {
        let fault = try Fault(environment: ProcessInfo.processInfo.environment["TRANSLATE_FAULT"])
        if case .slowBoot(let delay) = fault { try await Task.sleep(for: delay) }
        let configuration = ApplicationConfiguration(address: .hostname(host, port: port), serverName: "TranslateApp/\(release)")
        guard let databaseURL else {
            let router = TranslateRouter(release: Release(rawValue: release)!, fault: fault, store: MemoryStore())
            try await Application(router: router.build(), server: LiveChannel(release: router.release).server(), configuration: configuration).runService()
            return
        }
        let release = Release(rawValue: release)!
        let client = PostgresClient(configuration: try PostgresStore.configuration(url: databaseURL, release: release))
        let store = PostgresStore(client: client, release: release)
        let router = TranslateRouter(release: release, fault: fault, store: store)
        var app = Application(router: router.build(), server: LiveChannel(release: release).server(), configuration: configuration, services: [client])
        app.beforeServerStarts { try await store.prepare() }
        try await app.runService()
    }
}

enum Release: String, Sendable {
    case v5_3 = "5.3"
    case v5_4 = "5.4"
}

enum Fault: Sendable, Equatable {
    case none
    case failHealth
    case slowBoot(Duration)
    case crashAfter(Int)
    case errors

    init(environment value: String?) throws {
        guard let value, !value.isEmpty else {
            self = .none
            return
        }
        let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1] : ""
        switch parts[0] {
        case "health": self = .failHealth
        case "errors": self = .errors
        case "slow-boot" where Double(argument.hasSuffix("s") ? String(argument.dropLast()) : argument) != nil:
            let seconds = Double(argument.hasSuffix("s") ? String(argument.dropLast()) : argument)!
            self = .slowBoot(.milliseconds(Int(seconds * 1000)))
        case "crash-after" where (Int(argument) ?? 0) > 0:
            self = .crashAfter(Int(argument)!)
        default:
            throw ValidationError("TRANSLATE_FAULT='\(value)': expected health, errors, slow-boot=2s or crash-after=N")
        }
    }
}
