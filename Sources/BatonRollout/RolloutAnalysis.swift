import BatonCore

/// Reads a backend's requests and latency from the proxies' Prometheus text and judges an
/// observe window: the 5xx share and the p99 of what the new nodes served between two samples.
public struct RolloutAnalysis: Sendable, Equatable {
    /// Counters of one backend at one moment, summed over every proxy.
    public struct Sample: Sendable, Equatable {
        public var total: Double = 0
        public var errors: Double = 0
        /// Cumulative latency buckets: upper bound in seconds → count.
        public var buckets: [Double: Double] = [:]

        public init() {}
    }

    public struct Verdict: Sendable, Equatable {
        public var requests: Int
        public var errorRate: Double
        public var p99: Duration?
        public var breach: String?
    }

    public static func sample(backend: String, from texts: [String]) -> Sample {
        var sample = Sample()
        let selector = "backend=\"\(backend)\""
        for text in texts {
            for line in text.split(separator: "\n") where line.contains(selector) {
                guard let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
                if line.hasPrefix("baton_proxy_requests_total{") {
                    sample.total += value
                    if let status = label("status", in: line).flatMap(Int.init), status >= 500 { sample.errors += value }
                } else if line.hasPrefix("baton_proxy_request_duration_seconds_bucket{"), let le = label("le", in: line) {
                    let bound = le == "+Inf" ? Double.infinity : Double(le) ?? .infinity
                    sample.buckets[bound, default: 0] += value
                }
            }
        }
        return sample
    }

    /// Compares two samples against the thresholds.
    public static func judge(before: Sample, after: Sample, maxErrorRate: Double, maxP99: Duration?) -> Verdict {
        let total = after.total - before.total
        let errors = after.errors - before.errors
        let rate = total > 0 ? errors / total : 0
        var p99: Duration?
        let bounds = after.buckets.keys.sorted()
        let counts = bounds.map { after.buckets[$0, default: 0] - before.buckets[$0, default: 0] }
        if let last = counts.last, last > 0 {
            let target = last * 0.99
            if let index = counts.firstIndex(where: { $0 >= target }) {
                p99 = bounds[index].isFinite ? .milliseconds(Int64(bounds[index] * 1000)) : nil
            }
        }
        var breach: String?
        if total > 0 && rate > maxErrorRate {
            breach = "error rate \(percent(rate)) over \(Int(total)) requests exceeds max_error_rate \(percent(maxErrorRate))"
        } else if let maxP99, let p99, p99 > maxP99 {
            breach = "p99 \(p99.shortDescription) exceeds max_p99 \(maxP99.shortDescription)"
        }
        return Verdict(requests: Int(total), errorRate: rate, p99: p99, breach: breach)
    }

    private static func percent(_ value: Double) -> String {
        String(format: "%.1f%%", value * 100)
    }

    private static func label(_ name: String, in line: Substring) -> String? {
        guard let start = line.range(of: "\(name)=\"") else { return nil }
        let rest = line[start.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }
}

import Foundation
