import Foundation

extension Duration {
    /// The longest duration `init(parsing:)` accepts: far beyond any sensible timeout, and far
    /// below where nanoseconds, milliseconds or a deadline (now + duration) would overflow.
    public static let longestParsed = Duration.seconds(10 * 365 * 24 * 3600)

    /// Parses "250ms", "30s", "2m", "1h", "1.5s" or a bare number of seconds, up to ten years.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(trimmed)
        var scale = 1.0
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite,
            value * scale <= Double(Self.longestParsed.components.seconds)
        else { return nil }
        self = .nanoseconds(Int64((value * scale * 1e9).rounded()))
    }

    /// Whole milliseconds, for timers and JSON.
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a Double, for arithmetic and display.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// A short human form: "250ms", "30s", "1.5s".
    public var shortDescription: String {
        let ms = milliseconds
        if ms < 1000 { return "\(ms)ms" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(Double(ms) / 1000)s"
    }
}
