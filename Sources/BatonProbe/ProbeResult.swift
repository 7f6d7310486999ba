import BatonCore
import Foundation

/// What a probe run proved (or did not), with thresholds like k6's deciding the exit code.
public struct ProbeResult: Codable, Sendable {
    public var records: [ProbeRecord]
    public var lostWrites: [String]
    public var acknowledgedWrites: Int
    /// Latency percentiles over the whole run, in seconds.
    public var p50: Double
    public var p99: Double

    /// The response header that named releases (from the scenario).
    public var releaseHeader = Scenario.defaultReleaseHeader
    /// Page loads and the releases their follow-up requests were served by.
    public var ui = UILevel()

    public var total: Int { records.count }
    /// Failed requests and logouts, in time order, with status, reason and request.
    public var problems: [ProbeRecord] { records.filter { $0.outcome != .ok }.sorted { $0.at < $1.at } }
    /// Said when no response named its release, so the by-release chart would be empty.
    public var releaseNote: String? {
        records.contains { $0.release != nil } ? nil
            : "no response carried \(releaseHeader), so requests are not split by release; set release_header in the scenario to the header your app sends"
    }
    public var failed: Int { records.filter { $0.outcome == .failed }.count }
    public var logouts: Int { records.filter { $0.outcome == .logout }.count }

    public struct Thresholds: Sendable {
        public var maxFailed: Int?
        public var maxLogouts: Int?
        public var maxLostWrites: Int?
        public var maxP99: Duration?

        public init(maxFailed: Int? = nil, maxLogouts: Int? = nil, maxLostWrites: Int? = nil, maxP99: Duration? = nil) {
            self.maxFailed = maxFailed
            self.maxLogouts = maxLogouts
            self.maxLostWrites = maxLostWrites
            self.maxP99 = maxP99
        }
    }

    /// Each threshold the run broke, as a sentence; empty when it passed.
    public func violations(of thresholds: Thresholds) -> [String] {
        var broken: [String] = []
        if let max = thresholds.maxFailed, failed > max { broken.append("\(failed) failed requests (max \(max))") }
        if let max = thresholds.maxLogouts, logouts > max { broken.append("\(logouts) logouts (max \(max))") }
        if let max = thresholds.maxLostWrites, lostWrites.count > max { broken.append("\(lostWrites.count) lost writes (max \(max))") }
        if let max = thresholds.maxP99, p99 > max.seconds { broken.append("p99 \(Self.ms(p99)) (max \(max.shortDescription))") }
        return broken
    }

    /// `0 failed of 38,412 requests · 0 logouts · 0 lost writes · p99 14 ms`
    public var summary: String {
        let count = NumberFormatter.localizedString(from: NSNumber(value: total), number: .decimal)
        return "\(failed) failed of \(count) requests · \(logouts) logouts · \(lostWrites.count) lost writes of \(acknowledgedWrites) · p50 \(Self.ms(p50)) · p99 \(Self.ms(p99))"
    }

    static func ms(_ seconds: Double) -> String {
        seconds < 0.01 ? String(format: "%.1f ms", seconds * 1000) : "\(Int((seconds * 1000).rounded())) ms"
    }

    /// The latency at percentile `p` (0…1) of `records`, in seconds; 0 when there are none.
    public static func percentile(_ p: Double, of records: [ProbeRecord]) -> Double {
        let latencies = records.map(\.latency).sorted()
        return latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
    }

    /// Per-second series for charts: requests by release, p50/p99, failures, logouts.
    public struct Second: Codable, Sendable, Equatable {
        public var second: Int
        public var byRelease: [String: Int]
        public var p50: Double
        public var p99: Double
        public var failed: Int
        public var logouts: Int
    }

    public var seconds: [Second] {
        let grouped = Dictionary(grouping: records) { Int($0.at) }
        guard let last = grouped.keys.max() else { return [] }
        return (0...last).map { second in
            let records = grouped[second] ?? []
            var byRelease: [String: Int] = [:]
            for record in records where record.outcome == .ok { byRelease[record.release ?? "unknown", default: 0] += 1 }
            return Second(
                second: second, byRelease: byRelease,
                p50: Self.percentile(0.5, of: records), p99: Self.percentile(0.99, of: records),
                failed: records.filter { $0.outcome == .failed }.count,
                logouts: records.filter { $0.outcome == .logout }.count
            )
        }
    }
}
