import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// `GET /api/live` upgrades to a WebSocket, the page's live channel: every text message is
/// acknowledged by sending it back. Both releases speak it the same way, so a client moved from
/// one release's server to the other's by a drain just reconnects and re-sends what was not
/// acknowledged.
struct LiveChannel: Sendable {
    static let path = "/api/live"
    /// Larger messages end the socket (1009, message too big); frames are at most 16 KiB
    /// (the library's default).
    static let maxMessageSize = 64 * 1024

    let release: Release

    /// The server for `Application`: plain HTTP/1.1, and the upgrade on `path` only.
    func server() -> HTTPServerBuilder {
        .http1WebSocketUpgrade { request, _, _ in
            guard request.path?.split(separator: "?").first.map(String.init) == Self.path else { return .dontUpgrade }
            return .upgrade([.batonRelease: release.rawValue]) { inbound, outbound, _ in
                for try await message in inbound.messages(maxSize: Self.maxMessageSize) {
                    guard case .text(let text) = message else { continue }
                    try await outbound.write(.text(text))
                }
            }
        }
    }
}
