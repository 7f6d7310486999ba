import BatonCore
import BatonProxy
import Foundation

/// Judges an observe window from what the proxies say a backend served (`BackendStats`,
/// summed over every proxy) at its start and its end: the 5xx share and the p99, read from
/// buckets about 9 % wide, so within a few percent of the true value.
public struct RolloutAnalysis: Sendable, Equatable {
    public struct Verdict: Sendable, Equatable {
        public var requests: Int
        public var errorRate: Double
        public var p99: Duration?
        public var breach: String?
    }

    /// Compares the window's requests against the thresholds.
    public static func judge(before: BackendStats, after: BackendStats, maxErrorRate: Double, maxP99: Duration?) -> Verdict {
        let window = after.since(before)
        let total = Double(window.requests)
        let rate = total > 0 ? Double(window.serverErrors) / total : 0
        let p99 = window.percentile(0.99)
        var breach: String?
        if total > 0 && rate > maxErrorRate {
            breach = "error rate \(percent(rate)) over \(window.requests) requests exceeds max_error_rate \(percent(maxErrorRate))"
        } else if let maxP99, let p99, p99 > maxP99 {
            breach = "p99 \(p99.shortDescription) exceeds max_p99 \(maxP99.shortDescription)"
        }
        return Verdict(requests: Int(window.requests), errorRate: rate, p99: p99, breach: breach)
    }

    private static func percent(_ value: Double) -> String {
        String(format: "%.1f%%", value * 100)
    }
}
