import NIOCore
import NIOHTTP1

/// The `--redirect-listen` side: answers every request with a 308 to the same target on the
/// HTTPS listener, so a browser that typed http:// lands on https:// with its method kept.
/// Requests are not forwarded; a Host that is not a plain host name gets a 400, and a
/// connection that sends nothing for the header timeout is closed.
final class HTTPSRedirectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let httpsPort: Int
    private var response: (status: HTTPResponseStatus, location: String?, keepAlive: Bool)?

    init(httpsPort: Int) {
        self.httpsPort = httpsPort
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let location = Self.location(host: head.headers.first(name: "host"), target: head.uri, httpsPort: httpsPort)
            response = (location == nil ? .badRequest : .permanentRedirect, location, head.isKeepAlive && location != nil)
        case .body:
            break
        case .end:
            guard let response else { return }
            self.response = nil
            var headers = HTTPHeaders([("content-length", "0")])
            if let location = response.location { headers.add(name: "location", value: location) }
            if !response.keepAlive { headers.add(name: "connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
            let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !response.keepAlive { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// `https://HOST[:PORT]TARGET`, or nil when the Host is missing or not a host[:port] made of
    /// letters, digits, '-', '.' (or a bracketed IPv6 address): anything else would let a client
    /// write the redirect's authority.
    static func location(host: String?, target: String, httpsPort: Int) -> String? {
        guard let host, !host.isEmpty, host.utf8.count <= 255, target.hasPrefix("/") else { return nil }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return nil }
            let inside = name[name.index(after: name.startIndex)..<close]
            guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy(\.isASCIIDigit)) else { return nil }
            name = name[...close]
        } else {
            if let colon = name.firstIndex(of: ":") {
                guard name[name.index(after: colon)...].allSatisfy(\.isASCIIDigit) else { return nil }
                name = name[..<colon]
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) else { return nil }
        }
        let port = httpsPort == 443 ? "" : ":\(httpsPort)"
        return "https://\(name)\(port)\(target)"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
