import NIOCore
import NIOHTTP1
import NIOPosix

/// A complete HTTP response, body gathered.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public var bodyString: String { String(buffer: body) }
    public subscript(header name: String) -> String? { headers.first(name: name) }
}

/// A request to send with `HTTP1Client`.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var path: String
    public var headers: HTTPHeaders
    public var body: ByteBuffer?

    public init(_ method: HTTPMethod = .GET, _ path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    public init(_ method: HTTPMethod, _ path: String, headers: HTTPHeaders = [:], body: String) {
        self.init(method, path, headers: headers, body: ByteBuffer(string: body))
    }
}

/// A small HTTP/1.1 client on NIO for the CLI, health checks and tests: one keep-alive connection
/// at a time, requests sent in order, over TCP or a Unix socket. Not a general-purpose client:
/// no redirects, no TLS, no pooling.
public enum HTTP1Client {
    /// Opens a connection, runs `body` with it, and closes it afterwards.
    public static func withConnection<Result: Sendable>(
        to endpoint: Endpoint,
        connectTimeout: Duration = .seconds(5),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: (HTTP1Connection) async throws -> Result
    ) async throws -> Result {
        let channel = try await connect(to: endpoint, connectTimeout: connectTimeout, group: group)
        return try await channel.executeThenClose { inbound, outbound in
            let connection = HTTP1Connection(endpoint: endpoint, inbound: inbound.makeAsyncIterator(), outbound: outbound)
            return try await body(connection)
        }
    }

    /// Sends one request on a fresh connection and returns the whole response.
    public static func send(
        _ request: HTTPRequest,
        to endpoint: Endpoint,
        timeout: Duration = .seconds(30)
    ) async throws -> HTTPResponse {
        try await withTimeout(timeout, operation: "\(request.method) \(endpoint)\(request.path)") {
            try await withConnection(to: endpoint, connectTimeout: timeout) { try await $0.send(request) }
        }
    }

    static func connect(
        to endpoint: Endpoint,
        connectTimeout: Duration,
        group: any EventLoopGroup
    ) async throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        // ClientBootstrap sets TCP_NODELAY itself (at the TCP level: `.socketOption(.tcp_nodelay)`
        // would be SOL_SOCKET's option 1, SO_DEBUG, which only root may set).
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers()
                return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
            }
        }
        do {
            switch endpoint {
            case .tcp(let host, let port):
                return try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
            case .unix(let path):
                return try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
            }
        } catch {
            throw BatonError(.unavailable, "cannot connect to \(endpoint)", underlying: error)
        }
    }
}

/// One open client connection; requests go out one at a time.
public final class HTTP1Connection {
    public let endpoint: Endpoint
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>

    init(
        endpoint: Endpoint,
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    ) {
        self.endpoint = endpoint
        self.inbound = inbound
        self.outbound = outbound
    }

    /// Sends a request (its body from `request.body` and then `bodyWriter`, if given) and
    /// gathers the whole response.
    public func send(
        _ request: HTTPRequest,
        bodyWriter: ((NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) async throws -> Void)? = nil
    ) async throws -> HTTPResponse {
        var collected = ByteBuffer()
        let (status, headers) = try await stream(request, bodyWriter: bodyWriter) { part in
            var part = part
            collected.writeBuffer(&part)
        }
        return HTTPResponse(status: status, headers: headers, body: collected)
    }

    /// Sends a request whose body is produced by `bodyWriter` (streamed with backpressure) and
    /// hands each response body part to `onBodyPart` as it arrives, so neither side is held in
    /// memory whole.
    public func stream(
        _ request: HTTPRequest,
        bodyWriter: ((NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>) async throws -> Void)? = nil,
        onBodyPart: (ByteBuffer) throws -> Void
    ) async throws -> (status: Int, headers: HTTPHeaders) {
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path, headers: request.headers)
        if !head.headers.contains(name: "host") { head.headers.add(name: "host", value: endpoint.hostHeader) }
        if let body = request.body, !head.headers.contains(name: "content-length"),
            !head.headers.contains(name: "transfer-encoding")
        {
            head.headers.add(name: "content-length", value: String(body.readableBytes))
        }
        try await outbound.write(.head(head))
        if let body = request.body, body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
        if let bodyWriter { try await bodyWriter(outbound) }
        try await outbound.write(.end(nil))

        var responseHead: HTTPResponseHead?
        while let part = try await inbound.next() {
            switch part {
            case .head(let h):
                responseHead = h
            case .body(let buffer):
                try onBodyPart(buffer)
            case .end:
                guard let responseHead else {
                    throw BatonError(.protocolError, "\(endpoint): response ended before its head")
                }
                return (Int(responseHead.status.code), responseHead.headers)
            }
        }
        throw BatonError(.unavailable, "\(endpoint) closed the connection before the response was complete")
    }
}
