import ArgumentParser
import BatonCore
import BatonProxy
import Foundation

/// `baton proxy upgrade`: replaces running proxies' processes with a new binary, one at a time.
struct ProxyUpgradeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: "Replace a running proxy's process with a new binary, without closing its listening sockets.",
        discussion: """
            The running proxy starts the new binary with its own command line, hands it the listening sockets (over a private Unix socket, SCM_RIGHTS), the backend pool with its health and drain state, and the kept assets. The new process checks itself with a request through its own pipeline to a ready backend; then the old one pauses accepting, the new one starts accepting on the same sockets, and only once it does so does the old one close its listeners and finish its in-flight requests and WebSockets (as on SIGTERM). No connection is refused meanwhile. If the new binary fails at any step, it is stopped and the old process keeps serving; the command then fails. SIGUSR2 to the proxy does the same with the binary it was started from.

            With several --proxy the proxies are upgraded one at a time, stopping at the first that fails.

            Examples:
              baton proxy upgrade
              baton proxy upgrade --binary /usr/local/bin/baton-0.10
              baton proxy upgrade --proxy unix:/run/baton/a.sock --proxy unix:/run/baton/b.sock
              BATON_ADMIN_TOKEN=secret baton proxy upgrade --proxy 10.0.0.5:9090 --proxy 10.0.0.6:9090 --json
            """
    )
    @OptionGroup var connection: ProxyBackendsCommand.Connection
    @Option(name: .customLong("proxy"), help: "A proxy to upgrade: its admin socket (unix:/path) or TCP admin address (host:port); repeatable. Default: --admin / --admin-socket.")
    var proxies: [String] = []
    @Option(help: "The new binary, as the proxy's host sees it (default: the path the proxy was started from, e.g. after a new binary was installed there). Over the admin Unix socket only.")
    var binary: String?

    struct Upgraded: Encodable {
        var proxy: String
        var result: UpgradeResult
    }

    func run() async throws {
        try await failing {
            let targets = try proxies.isEmpty ? [connection.client.endpoint] : proxies.map(Endpoint.init(parsing:))
            var done: [Upgraded] = []
            for target in targets {
                let client = AdminClient(endpoint: target, token: connection.shared.token)
                do {
                    let result = try await client.upgrade(binary: binary)
                    done.append(Upgraded(proxy: target.description, result: result))
                    if !connection.json {
                        print("\(target): pid \(result.oldPid) -> \(result.newPid), serving \(result.version)")
                    }
                } catch let error as BatonError {
                    let left = targets.drop(while: { $0 != target }).dropFirst().map(\.description)
                    throw BatonError(error.code, "\(target): \(error.message)\(left.isEmpty ? "" : "; not upgraded: \(left.joined(separator: ", "))")")
                }
            }
            if connection.json { try printJSON(done) }
        }
    }
}
