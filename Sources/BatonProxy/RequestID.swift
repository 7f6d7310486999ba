/// Request IDs: 16 hex digits, random, cheap to make on the request path.
enum RequestID {
    static func make() -> String {
        let value = UInt64.random(in: 1...UInt64.max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
