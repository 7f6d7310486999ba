import BatonCore
import Foundation
import NIOConcurrencyHelpers

/// Open-model load: requests start at a fixed rate whatever the server does, each on its own
/// connection, and latency is measured from when the request was due, so a stalled server
/// shows as latency instead of as fewer requests (no coordinated omission).
public final class RateLoad: Sendable {
    public struct Sample: Sendable {
        /// Seconds since the load started, when the request was due.
        public var due: Double
        public var latency: Double
        public var failed: Bool
    }

    private let samples = NIOLockedValueBox<[Sample]>([])
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)
    public let start = ContinuousClock.now

    public static func start(against endpoint: Endpoint, perSecond rate: Int, request: @escaping @Sendable (Int) -> HTTPRequest) -> RateLoad {
        let load = RateLoad()
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        load.task.withLockedValue {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    var index = 0
                    while !Task.isCancelled {
                        let due = load.start + interval * index
                        try? await Task.sleep(until: due, clock: .continuous)
                        if Task.isCancelled { break }
                        let next = request(index)
                        group.addTask {
                            var failed = false
                            do {
                                let response = try await HTTP1Client.send(next, to: endpoint, timeout: .seconds(30))
                                failed = response.status >= 500
                            } catch {
                                failed = true
                            }
                            let now = ContinuousClock.now
                            load.samples.withLockedValue {
                                $0.append(Sample(due: (due - load.start).seconds, latency: (now - due).seconds, failed: failed))
                            }
                        }
                        index += 1
                    }
                }
            }
        }
        return load
    }

    /// Seconds since the load started.
    public var elapsed: Double { (ContinuousClock.now - start).seconds }

    /// Stops starting requests, waits for the ones in flight, returns every sample.
    public func stop() async -> [Sample] {
        let running = task.withLockedValue { $0 }
        running?.cancel()
        await running?.value
        return samples.withLockedValue { $0 }
    }

    /// The p-th percentile latency (0…1) of the samples due in [from, to).
    public static func percentile(_ p: Double, of samples: [Sample], from: Double, to: Double) -> Double {
        let latencies = samples.filter { $0.due >= from && $0.due < to }.map(\.latency).sorted()
        guard !latencies.isEmpty else { return 0 }
        return latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
    }
}
