import Foundation
import Histogram
import NIOConcurrencyHelpers

/// One request as the probe saw it.
public struct ProbeRecord: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case ok
        /// A transport error or a 5xx.
        case failed
        /// A logged-in user was told to log in again.
        case logout
    }

    /// Seconds from the start of the run to when the request was due.
    public var at: Double
    /// Seconds from when it was due to the end of the response (open model).
    public var latency: Double
    public var status: Int
    public var outcome: Outcome
    public var release: String?
    public var backend: String?
    /// Why it failed: the transport error, or the proxy's `X-Baton-Error` on a 5xx.
    public var error: String?
    /// "GET /api/items", for failures.
    public var request: String?
}

/// Collects records from every virtual user, and the latency histogram.
public final class ProbeRecorder: Sendable {
    private struct State {
        var records: [ProbeRecord] = []
        var histogram = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func record(_ record: ProbeRecord) {
        state.withLockedValue {
            $0.records.append(record)
            $0.histogram.record(UInt64(max(0, record.latency) * 1_000_000))
        }
    }

    public var records: [ProbeRecord] { state.withLockedValue { $0.records } }

    /// Latency at a percentile (0…100), in seconds.
    public func percentile(_ p: Double) -> Double {
        state.withLockedValue { Double($0.histogram.valueAtPercentile(p)) / 1_000_000 }
    }
}
