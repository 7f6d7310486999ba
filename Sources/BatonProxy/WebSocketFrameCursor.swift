/// Follows WebSocket frame boundaries (RFC 6455 §5.2) in one direction of a tunnel without
/// decoding payloads, so the proxy can put its own close frame between two frames, never inside
/// one. Pure: fed bytes, it says how many belong to the frame in progress.
struct WebSocketFrameCursor: Equatable {
    /// Header bytes of the frame being read; empty between frames and while in a payload.
    private var header: [UInt8] = []
    /// Payload bytes of the current frame still to come.
    private var remaining: UInt64 = 0

    init() {}

    /// Between two frames: a frame of our own may be sent now.
    var atBoundary: Bool { header.isEmpty && remaining == 0 }

    /// Moves over `bytes`; with `stoppingAtBoundary`, stops at the first frame boundary after at
    /// least one byte. Returns how many bytes it moved over.
    mutating func advance<Bytes: Collection<UInt8>>(over bytes: Bytes, stoppingAtBoundary: Bool = false) -> Int {
        var index = bytes.startIndex
        var moved = 0
        while index != bytes.endIndex {
            if remaining > 0 {
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let step = Int(min(UInt64(available), remaining))
                remaining -= UInt64(step)
                index = bytes.index(index, offsetBy: step)
                moved += step
            } else {
                header.append(bytes[index])
                index = bytes.index(after: index)
                moved += 1
                if let length = Self.payloadLength(header) {
                    header.removeAll(keepingCapacity: true)
                    remaining = length
                }
            }
            if stoppingAtBoundary && atBoundary { break }
        }
        return moved
    }

    /// The payload length once `header` is complete, nil while more header bytes are needed.
    private static func payloadLength(_ header: [UInt8]) -> UInt64? {
        guard header.count >= 2 else { return nil }
        let masked = header[1] & 0x80 != 0
        let short = UInt64(header[1] & 0x7F)
        let extended = short == 126 ? 2 : short == 127 ? 8 : 0
        guard header.count == 2 + extended + (masked ? 4 : 0) else { return nil }
        guard extended > 0 else { return short }
        return header[2..<(2 + extended)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    /// A close frame with `code` (1001 going away, 1012 service restart), masked when it goes to
    /// a server, as RFC 6455 §5.3 requires of a client.
    static func closeFrame(code: UInt16, masked: Bool) -> [UInt8] {
        let payload = [UInt8(code >> 8), UInt8(code & 0xFF)]
        guard masked else { return [0x88, 0x02] + payload }
        let key: [UInt8] = (0..<4).map { _ in UInt8.random(in: 0...255) }
        return [0x88, 0x82] + key + payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }
}
