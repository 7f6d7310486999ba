import BatonCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket echo server for tests, on 127.0.0.1: any path upgrades; every text frame is
/// echoed back (an echo is the backend's acknowledgement) and recorded; a close frame is answered
/// with a close frame and the connection closed, its code recorded. Plain requests: `GET /up`
/// 200, anything else "hello from NAME".
public final class WebSocketBackend: Sendable {
    public let name: String
    public let port: Int
    private let server: any Channel
    private let state: NIOLockedValueBox<State>

    struct State {
        var acknowledged: [String] = []
        var closeCodes: [UInt16] = []
        var open = 0
        var channels: [ObjectIdentifier: any Channel] = [:]
    }

    public var endpoint: Endpoint { .tcp(host: "127.0.0.1", port: port) }
    public var address: String { endpoint.description }
    /// Text messages echoed, in order of arrival.
    public var acknowledged: [String] { state.withLockedValue { $0.acknowledged } }
    /// Close codes received from clients (or from the proxy on their behalf).
    public var closeCodes: [UInt16] { state.withLockedValue { $0.closeCodes } }
    /// WebSockets open now.
    public var openSockets: Int { state.withLockedValue { $0.open } }

    public static func start(name: String) async throws -> WebSocketBackend {
        let state = NIOLockedValueBox(State())
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                state.withLockedValue { $0.channels[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = state.withLockedValue { $0.channels.removeValue(forKey: id) } }
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, _ in
                        channel.pipeline.removeHandler(name: "http").flatMap {
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(EchoHandler(state: state))
                            }
                        }
                    }
                )
                return channel.pipeline.configureHTTPServerPipeline(
                    withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                ).flatMap {
                    channel.pipeline.addHandler(PlainHandler(name: name), name: "http")
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return WebSocketBackend(name: name, server: server, state: state)
    }

    private init(name: String, server: any Channel, state: NIOLockedValueBox<State>) {
        self.name = name
        self.server = server
        self.port = server.localAddress?.port ?? 0
        self.state = state
    }

    public func stop() async {
        try? await server.close()
        for channel in state.withLockedValue({ Array($0.channels.values) }) { try? await channel.close() }
    }

    private final class PlainHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let name: String
        init(name: String) { self.name = name }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let body = ByteBuffer(string: "hello from \(name)\n")
            let headers = HTTPHeaders([("content-length", String(body.readableBytes))])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private final class EchoHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame
        let state: NIOLockedValueBox<State>
        init(state: NIOLockedValueBox<State>) { self.state = state }

        func handlerAdded(context: ChannelHandlerContext) {
            state.withLockedValue { $0.open += 1 }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLockedValue { $0.open -= 1 }
            context.fireChannelInactive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            case .text:
                var payload = frame.unmaskedData
                let text = payload.readString(length: payload.readableBytes) ?? ""
                state.withLockedValue { $0.acknowledged.append(text) }
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))), promise: nil)
            case .connectionClose:
                var payload = frame.unmaskedData
                let code = payload.readInteger(as: UInt16.self) ?? 1005
                state.withLockedValue { $0.closeCodes.append(code) }
                var reply = context.channel.allocator.buffer(capacity: 2)
                reply.writeInteger(code)
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                    .whenComplete { _ in context.close(promise: nil) }
            case .ping:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            default:
                break
            }
        }
    }
}
