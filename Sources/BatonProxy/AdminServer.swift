import BatonCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `AdminAPI` on a Unix socket (mode 0600, so only its owner may call it) and, when a
/// token is configured, on TCP, where every call must carry `Authorization: Bearer TOKEN`.
struct AdminServer: Sendable {
    typealias Connection = NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>

    let api: AdminAPI
    let group: any EventLoopGroup
    let logger: Logger

    /// Binds the listener and returns it with the address it got, for `serve`.
    func bind(_ endpoint: Endpoint) async throws -> (NIOAsyncChannel<Connection, Never>, SocketAddress?) {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(NIOHTTPServerRequestAggregator(maxContentLength: 1 << 20))
                return try Connection(wrappingChannelSynchronously: channel)
            }
        }
        let server: NIOAsyncChannel<Connection, Never>
        switch endpoint {
        case .tcp(let host, let port):
            server = try await bootstrap.bind(host: host, port: port, childChannelInitializer: initializer)
        case .unix(let path):
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true, childChannelInitializer: initializer)
            chmod(path, 0o600)
        }
        return (server, server.channel.localAddress)
    }

    /// Accepts and serves connections until cancelled.
    func serve(_ server: NIOAsyncChannel<Connection, Never>, token: String?) async {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await serveConnection(connection, token: token) }
                    }
                }
            }
        } catch is CancellationError {
        } catch {
            logger.error("admin API listener failed: \(error)")
        }
    }

    private func serveConnection(_ connection: Connection, token: String?) async {
        try? await connection.executeThenClose { inbound, outbound in
            for try await request in inbound {
                let response: AdminAPI.Response
                if let token, request.head.headers.first(name: "authorization") != "Bearer \(token)" {
                    response = .error(.unauthorized, "missing or wrong bearer token: send Authorization: Bearer TOKEN")
                } else {
                    response = await api.handle(method: request.head.method, uri: request.head.uri, body: request.body)
                }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: response.contentType)
                headers.add(name: "content-length", value: String(response.body.readableBytes))
                try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)))
                try await outbound.write(.body(.byteBuffer(response.body)))
                try await outbound.write(.end(nil))
            }
        }
    }
}
