import Synchronization

/// Request IDs: 16 hex digits from a SplitMix64 generator per connection. The process draws one
/// seed from the system random source; each connection starts its generator at its own point of
/// that sequence, so a new connection costs no system call.
enum RequestID {
    private static let seed = UInt64.random(in: 0...UInt64.max)
    private static let connections = Atomic<UInt64>(0)

    struct Generator {
        private var state = RequestID.seed &+ RequestID.connections.wrappingAdd(1, ordering: .relaxed).newValue &* 0xD1B5_4A32_D192_ED03

        mutating func next() -> String {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return String(unsafeUninitializedCapacity: 16) { buffer in
                let digits: StaticString = "0123456789abcdef"
                for index in 0..<16 {
                    let nibble = Int((z >> UInt64(60 - index * 4)) & 0xF)
                    buffer[index] = digits.utf8Start[nibble]
                }
                return 16
            }
        }
    }
}
