/// Follows event boundaries in a `text/event-stream` body (an event ends with a blank line,
/// WHATWG HTML §9.2.6), so a drain can end the stream between two events. Pure.
struct EventStreamCursor: Equatable {
    /// The last byte seen, other than CR.
    private var previous: UInt8 = 0x0A
    /// Between two events (also before the first).
    private(set) var atBoundary = true

    init() {}

    /// Moves over `bytes`; with `stoppingAtBoundary`, stops just after the first event's end and
    /// returns how many bytes that took (all of them when no event ends in `bytes`).
    mutating func advance<Bytes: Collection<UInt8>>(over bytes: Bytes, stoppingAtBoundary: Bool = false) -> Int {
        var moved = 0
        for byte in bytes {
            moved += 1
            if byte == 0x0D { continue }
            atBoundary = byte == 0x0A && previous == 0x0A
            previous = byte
            if atBoundary && stoppingAtBoundary { break }
        }
        return moved
    }
}
