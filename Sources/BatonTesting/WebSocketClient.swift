import BatonCore
import Foundation
import Synchronization

/// A WebSocket client for tests, on a raw connection: the handshake is plain text, frames are
/// built and parsed here (RFC 6455 §5.2), so tests see exactly what crossed the proxy.
public final class WebSocketClient: Sendable {
    public struct Frame: Sendable, Equatable {
        public var opcode: UInt8
        public var payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
        /// The status code of a close frame.
        public var closeCode: UInt16? { opcode == 0x8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil }
    }

    public let connection: RawConnection
    /// The handshake response's head.
    public let handshake: String
    private let consumed: Mutex<Int>

    /// Connects and upgrades; throws with the response when the answer is not a 101.
    public static func connect(to endpoint: Endpoint, path: String = "/socket", timeout: Duration = .seconds(5)) async throws -> WebSocketClient {
        let connection = try await RawConnection.connect(to: endpoint)
        try await connection.send(
            "GET \(path) HTTP/1.1\r\nHost: app.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            let bytes = connection.bytes
            if let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
                let head = String(decoding: bytes[..<end.upperBound], as: UTF8.self)
                guard head.hasPrefix("HTTP/1.1 101") else {
                    await connection.close()
                    throw BatonError(.io, "WebSocket handshake refused: \(head)")
                }
                return WebSocketClient(connection: connection, handshake: head, consumed: end.upperBound)
            }
            if connection.closedByPeer { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        await connection.close()
        throw BatonError(.timeout, "no WebSocket handshake response: \(connection.text)")
    }

    private init(connection: RawConnection, handshake: String, consumed: Int) {
        self.connection = connection
        self.handshake = handshake
        self.consumed = Mutex(consumed)
    }

    public func send(_ text: String) async throws {
        try await connection.send(bytes: Self.maskedFrame(opcode: 0x1, payload: Array(text.utf8)))
    }

    public func sendClose(code: UInt16 = 1000) async throws {
        try await connection.send(bytes: Self.maskedFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)]))
    }

    /// The next data or close frame from the server, or nil when the connection closed or
    /// `timeout` passed. Pings are answered with a pong and skipped, as a browser would.
    public func next(timeout: Duration = .seconds(5)) async -> Frame? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (frame, closed, seen): (Frame?, Bool, Int) = connection.withReceived { bytes, closed in
                consumed.withLock { offset in
                    guard let (frame, length) = Self.parse(bytes[offset...]) else { return (nil, closed, bytes.count) }
                    offset += length
                    return (frame, closed, bytes.count)
                }
            }
            switch frame?.opcode {
            case 0x9?:
                try? await connection.send(bytes: Self.maskedFrame(opcode: 0xA, payload: frame!.payload))
                continue
            case 0xA?:
                continue
            case .some:
                return frame
            case nil:
                let left = deadline - ContinuousClock.now
                if closed || left <= .zero { return nil }
                await connection.waitForMore(than: seen, timeout: left)
            }
        }
    }

    public func close() async {
        await connection.close()
    }

    static func maskedFrame(opcode: UInt8, payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        let key: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += key
        frame += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        return frame
    }

    /// An unmasked server frame at the start of `bytes` and its length on the wire.
    static func parse(_ bytes: ArraySlice<UInt8>) -> (Frame, Int)? {
        let start = bytes.startIndex
        guard bytes.count >= 2 else { return nil }
        var length = Int(bytes[start + 1] & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[start + 2]) << 8 | Int(bytes[start + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = bytes[(start + 2)..<(start + 10)].reduce(0) { $0 << 8 | Int($1) }
            header = 10
        }
        guard bytes.count >= header + length else { return nil }
        let payload = Array(bytes[(start + header)..<(start + header + length)])
        return (Frame(opcode: bytes[start] & 0x0F, payload: payload), header + length)
    }
}
