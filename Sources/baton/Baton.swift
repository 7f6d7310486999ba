import ArgumentParser
import BatonCore

@main
struct Baton: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Zero-downtime releases for web applications on a fleet of servers.",
        discussion: """
            Examples:
              baton proxy --listen 127.0.0.1:8080 --backend web1=127.0.0.1:3001
              baton proxy backends list
              baton proxy backends drain web1 --timeout 30s
            """,
        subcommands: [ProxyCommand.self]
    )
}

/// Prints a BatonError as one line and exits non-zero, instead of a stack of context.
func failing<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as BatonError {
        throw ValidationErrorLine(message: error.description)
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
