import Foundation
import ArgumentParser
import BatonCore
import BatonRollout

@main
struct Baton: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Zero-downtime releases for web applications on a fleet of servers.",
        discussion: """
            Examples:
              baton init                          # write an example baton.yml
              baton proxy --listen 127.0.0.1:8080 # run the proxy the nodes sit behind
              baton release add dist/ --id 5.4
              baton plan 5.4 && baton deploy 5.4
              baton status
              baton rollback
              baton node remove web3
              baton migrate start migrations/02_rename.json
              baton compat openapi releases/5.3/openapi.yaml releases/5.4/openapi.yaml
              baton --version
            """,
        version: BatonVersion.description,
        subcommands: [
            InitCommand.self, ReleaseCommand.self, DeployCommand.self, RollbackCommand.self, StatusCommand.self, HistoryCommand.self, LockCommand.self,
            PlanCommand.self, NodeCommand.self, MigrateCommand.self, CompatCommand.self, ProbeCommand.self, ProxyCommand.self, DemoCommand.self,
        ]
    )
}

/// Prints a BatonError as one line and exits non-zero, instead of a stack of context.
func failing<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as BatonError {
        throw ValidationErrorLine(message: error.description)
    } catch let error as RolloutFailure where error.reported {
        // Its FAILED line is out already: only the exit status is left to say.
        throw ExitCode.failure
    } catch let error as RolloutFailure {
        throw ValidationErrorLine(message: error.message)
    }
}

struct ValidationErrorLine: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

extension Duration: @retroactive ExpressibleByArgument {
    public init?(argument: String) {
        self.init(parsing: argument)
    }
}

extension Endpoint: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

/// Pretty, sorted JSON on stdout, for `--json`.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
