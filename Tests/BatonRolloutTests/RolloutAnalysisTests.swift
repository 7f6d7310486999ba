import BatonProxy
import BatonRollout
import Foundation
import Testing

@Suite struct RolloutAnalysisTests {
    /// `ok` 200s taking `fast` and `slow` requests (500s, `errors` 503s among them).
    func stats(ok: Int, errors: Int, fastMs: Double = 5, slow: Int = 0, slowMs: Double = 300) -> BackendStats {
        var stats = BackendStats()
        for _ in 0..<ok { stats.record(status: 200, nanoseconds: Int64(fastMs * 1e6)) }
        for _ in 0..<errors { stats.record(status: 503, nanoseconds: Int64(fastMs * 1e6)) }
        for _ in 0..<slow { stats.record(status: 200, nanoseconds: Int64(slowMs * 1e6)) }
        return stats
    }

    @Test func onlyTheWindowCounts() {
        // 50 errors before the window, none in it.
        let before = stats(ok: 100, errors: 50)
        var after = before
        after.add(stats(ok: 1000, errors: 0))
        let verdict = RolloutAnalysis.judge(before: before, after: after, maxErrorRate: 0.01, maxP99: nil)
        #expect(verdict.requests == 1000)
        #expect(verdict.errorRate == 0)
        #expect(verdict.breach == nil)
    }

    @Test func breachesNameTheThreshold() {
        let empty = BackendStats()
        let failing = stats(ok: 90, errors: 10)
        #expect(RolloutAnalysis.judge(before: empty, after: failing, maxErrorRate: 0.05, maxP99: nil).breach?.contains("error rate 10.0%") == true)
        let slow = stats(ok: 90, errors: 0, slow: 10)
        let verdict = RolloutAnalysis.judge(before: empty, after: slow, maxErrorRate: 0.05, maxP99: .milliseconds(100))
        #expect(verdict.breach?.contains("exceeds max_p99 100ms") == true, "\(verdict)")
    }

    @Test func proxiesAddUp() {
        var total = stats(ok: 1, errors: 1)
        total.add(stats(ok: 2, errors: 0))
        #expect(total.requests == 4)
        #expect(total.serverErrors == 1)
    }

    @Test func nothingServedIsNoBreach() {
        let sample = BackendStats()
        #expect(RolloutAnalysis.judge(before: sample, after: sample, maxErrorRate: 0, maxP99: .milliseconds(1)).breach == nil)
    }

    /// The bar: within 10 % of the true p99 (the old buckets said 5s for a p99 of 3.0s).
    @Test(arguments: [3.0, 0.250, 0.0123, 0.0004])
    func p99IsWithinTenPercentOfTheTrueValue(seconds: Double) {
        var generator = SystemRandomNumberGenerator()
        var latencies: [Double] = []
        var stats = BackendStats()
        for index in 0..<20_000 {
            // Mostly fast, a tail whose 99th percentile is `seconds`.
            let value = index % 100 == 0 ? seconds * Double.random(in: 1.0...1.5, using: &generator) : seconds * Double.random(in: 0.05...0.98, using: &generator)
            latencies.append(value)
            stats.record(status: 200, nanoseconds: Int64(value * 1e9))
        }
        latencies.sort()
        let truth = latencies[Int((Double(latencies.count) * 0.99).rounded(.up)) - 1]
        let measured = try! #require(stats.percentile(0.99)).seconds
        #expect(abs(measured - truth) / truth < 0.10, "p99 \(measured) against \(truth)")
    }
}
