import Foundation

/// What one backend served: requests, 5xx answers, and latencies in log-spaced buckets, eight
/// per doubling from 100 µs (each about 9 % wide), so a percentile read from it lies within a
/// few percent of the true value. The rollout's observe window subtracts two of them.
///
/// Each event loop keeps its own (in the backend's connection pool for that loop), so the
/// request path counts without a lock; the admin API adds them up.
public struct BackendStats: Codable, Sendable, Equatable {
    public var requests: UInt64 = 0
    public var serverErrors: UInt64 = 0
    /// Counts by bucket index (see `bucket(nanoseconds:)`), trailing empty buckets left off.
    public var latency: [UInt64] = []

    public init() {}

    static let smallest = 100_000.0
    static let perDoubling = 8.0
    /// 100 µs · 2^20 ≈ 105 s; slower requests land in the last bucket.
    static let bucketCount = 161

    static func bucket(nanoseconds: Int64) -> Int {
        let ratio = Double(max(nanoseconds, 1)) / smallest
        guard ratio > 1 else { return 0 }
        return min(bucketCount - 1, Int((log2(ratio) * perDoubling).rounded(.up)))
    }

    /// The bucket's upper bound in nanoseconds (bucket 0 holds everything up to 100 µs).
    static func upperBound(_ index: Int) -> Double {
        smallest * pow(2, Double(index) / perDoubling)
    }

    public mutating func record(status: Int, nanoseconds: Int64) {
        requests += 1
        if status >= 500 { serverErrors += 1 }
        let index = Self.bucket(nanoseconds: nanoseconds)
        if latency.count <= index { latency += repeatElement(0, count: index + 1 - latency.count) }
        latency[index] += 1
    }

    public mutating func add(_ other: BackendStats) {
        requests += other.requests
        serverErrors += other.serverErrors
        if latency.count < other.latency.count { latency += repeatElement(0, count: other.latency.count - latency.count) }
        for (index, count) in other.latency.enumerated() { latency[index] += count }
    }

    /// What was served between `earlier` and this one.
    public func since(_ earlier: BackendStats) -> BackendStats {
        var delta = BackendStats()
        delta.requests = requests &- earlier.requests
        delta.serverErrors = serverErrors &- earlier.serverErrors
        delta.latency = latency.enumerated().map { $0.element &- (earlier.latency.count > $0.offset ? earlier.latency[$0.offset] : 0) }
        return delta
    }

    /// The `p`-th percentile (0…1) of the latencies, nil when nothing was served: the bucket
    /// holding it, interpolated geometrically by rank within the bucket.
    public func percentile(_ p: Double) -> Duration? {
        let total = latency.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, (p * Double(total)).rounded(.up))
        var below = 0.0
        for (index, count) in latency.enumerated() where count > 0 {
            if below + Double(count) >= rank {
                let upper = Self.upperBound(index)
                let lower = index == 0 ? 0 : Self.upperBound(index - 1)
                let fraction = (rank - below) / Double(count)
                let value = index == 0 ? upper * fraction : lower * pow(upper / lower, fraction)
                return .nanoseconds(Int64(value))
            }
            below += Double(count)
        }
        return nil
    }
}
