import ArgumentParser
import BatonCore
import BatonProxy

/// `baton proxy tls`: what a running proxy's HTTPS listener serves, and renewing it.
struct ProxyTLSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Show a running proxy's TLS certificates, or read their files again after a renewal.",
        discussion: """
            Reloading reads every --tls-certificate pair again; new handshakes use them at once and open connections keep theirs. A pair that is missing, expired or whose key does not fit is refused and the certificates in use stay (SIGHUP does the same).

            Examples:
              baton proxy tls
              baton proxy tls --reload --admin-socket /run/baton/proxy.sock
            """
    )
    @OptionGroup var connection: ProxyBackendsCommand.Connection
    @Flag(help: "Read the certificate files again.") var reload = false

    func run() async throws {
        try await failing {
            let result = try await connection.client.certificates(reload: reload)
            try connection.print(result) {
                guard !result.certificates.isEmpty else { return "no TLS listener" }
                return Table.render(header: ["NAMES", "EXPIRES"], rows: result.certificates.map { [$0.names.joined(separator: ","), $0.notValidAfter] })
            }
        }
    }
}
