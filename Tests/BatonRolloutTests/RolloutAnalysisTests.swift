import BatonRollout
import Foundation
import Testing

@Suite struct RolloutAnalysisTests {
    func text(ok: Int, errors: Int, fast: Int, slow: Int) -> String {
        """
        baton_proxy_requests_total{backend="web1-5.4",status="200"} \(ok)
        baton_proxy_requests_total{backend="web1-5.4",status="503"} \(errors)
        baton_proxy_requests_total{backend="web2-5.3",status="500"} 1000
        baton_proxy_request_duration_seconds_bucket{backend="web1-5.4",le="0.01"} \(fast)
        baton_proxy_request_duration_seconds_bucket{backend="web1-5.4",le="0.5"} \(fast + slow)
        baton_proxy_request_duration_seconds_bucket{backend="web1-5.4",le="+Inf"} \(fast + slow)
        """
    }

    @Test func errorRateIsJudgedOnTheWindowOnly() {
        let before = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 100, errors: 50, fast: 150, slow: 0)])
        let after = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 1100, errors: 50, fast: 1150, slow: 0)])
        let verdict = RolloutAnalysis.judge(before: before, after: after, maxErrorRate: 0.01, maxP99: nil)
        #expect(verdict.requests == 1000)
        #expect(verdict.errorRate == 0)
        #expect(verdict.breach == nil)
        #expect(verdict.p99 == .milliseconds(10))
    }

    @Test func errorsAndSlowRequestsBreach() {
        let before = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 0, errors: 0, fast: 0, slow: 0)])
        let failing = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 90, errors: 10, fast: 100, slow: 0)])
        #expect(RolloutAnalysis.judge(before: before, after: failing, maxErrorRate: 0.05, maxP99: nil).breach?.contains("error rate 10.0%") == true)
        let slow = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 100, errors: 0, fast: 90, slow: 10)])
        let verdict = RolloutAnalysis.judge(before: before, after: slow, maxErrorRate: 0.05, maxP99: .milliseconds(100))
        #expect(verdict.p99 == .milliseconds(500))
        #expect(verdict.breach == "p99 500ms exceeds max_p99 100ms")
    }

    @Test func sumsEveryProxy() {
        let sample = RolloutAnalysis.sample(backend: "web1-5.4", from: [text(ok: 1, errors: 1, fast: 2, slow: 0), text(ok: 2, errors: 0, fast: 2, slow: 0)])
        #expect(sample.total == 4)
        #expect(sample.errors == 1)
    }

    @Test func noTrafficIsNoBreach() {
        let sample = RolloutAnalysis.Sample()
        #expect(RolloutAnalysis.judge(before: sample, after: sample, maxErrorRate: 0, maxP99: .milliseconds(1)).breach == nil)
    }
}
