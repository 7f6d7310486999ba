import BatonCore
import NIOCore
import NIOPosix

/// HAProxy's Runtime API on its stats socket (`stats socket PATH level admin`): one command per
/// connection, as the socket's non-interactive mode answers and then closes.
public struct HAProxyRuntime: Sendable {
    /// The socket: a Unix path, or host:port for a TCP stats socket.
    public let endpoint: Endpoint
    public let timeout: Duration

    public init(endpoint: Endpoint, timeout: Duration = .seconds(5)) {
        self.endpoint = endpoint
        self.timeout = timeout
    }

    /// Sends one command and returns HAProxy's whole answer.
    public func send(_ command: String) async throws -> String {
        precondition(!command.contains("\n"), "one command per call")
        let endpoint = self.endpoint
        do {
            return try await withTimeout(timeout, operation: "HAProxy at \(endpoint): \(command)") {
                let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
                let configure: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel(wrappingChannelSynchronously: channel) }
                }
                switch endpoint {
                case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: configure)
                case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port, channelInitializer: configure)
                }
                return try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: command + "\n"))
                    var answer = ""
                    for try await chunk in inbound { answer += String(buffer: chunk) }
                    return answer
                }
            }
        } catch let error as BatonError {
            throw error
        } catch {
            throw BatonError(.unavailable, "HAProxy runtime API at \(endpoint): \(error); is `stats socket … level admin` in haproxy.cfg?", underlying: error)
        }
    }
}
