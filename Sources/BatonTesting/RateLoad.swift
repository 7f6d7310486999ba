import BatonCore
import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// Open-model load: requests start at a fixed rate whatever the server does, and latency is
/// measured from when the request was due, so a stalled server shows as latency instead of as
/// fewer requests (no coordinated omission). A request goes on a new connection, or on one of a
/// few keep-alive connections (lanes) that carry many requests each.
///
/// Stopping waits for every request still in flight: only a request that really failed (a 5xx
/// or a broken connection) counts as failed, never one that was merely cut off by the stop.
public final class RateLoad: Sendable {
    public struct Sample: Sendable {
        /// Seconds since the load started, when the request was due.
        public var due: Double
        public var latency: Double
        public var failed: Bool
        /// The response status, nil when no response came.
        public var status: Int?
        /// The proxy's `X-Baton-Error`, or what went wrong on the connection.
        public var error: String?
        public var request: String
    }

    public enum Connection: Sendable { case new, keepAlive }

    private typealias Job = (request: HTTPRequest, due: ContinuousClock.Instant)

    private let samples = NIOLockedValueBox<[Sample]>([])
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)
    private let stopping = Atomic<Bool>(false)
    public let start = ContinuousClock.now

    public static func start(
        against endpoint: Endpoint,
        perSecond rate: Int,
        keepAliveLanes: Int = 32,
        request: @escaping @Sendable (Int) -> (HTTPRequest, Connection)
    ) -> RateLoad {
        let load = RateLoad()
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(rate))
        load.task.withLockedValue {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    var lanes: [AsyncStream<Job>.Continuation] = []
                    for _ in 0..<max(keepAliveLanes, 1) {
                        let (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
                        lanes.append(continuation)
                        group.addTask { await load.runLane(jobs, endpoint: endpoint) }
                    }
                    var index = 0
                    while !load.stopping.load(ordering: .relaxed) {
                        let due = load.start + interval * index
                        try? await Task.sleep(until: due, clock: .continuous)
                        if load.stopping.load(ordering: .relaxed) { break }
                        let (next, connection) = request(index)
                        switch connection {
                        case .keepAlive:
                            lanes[index % lanes.count].yield((next, due))
                        case .new:
                            group.addTask {
                                do {
                                    let response = try await HTTP1Client.send(next, to: endpoint, timeout: .seconds(30))
                                    load.record(next, due: due, response: response)
                                } catch {
                                    load.record(next, due: due, error: error)
                                }
                            }
                        }
                        index += 1
                    }
                    // Lanes finish what they were given, then end; the group waits for all.
                    for lane in lanes { lane.finish() }
                }
            }
        }
        return load
    }

    /// One keep-alive connection, reopened when the proxy closes it after a response.
    private func runLane(_ jobs: AsyncStream<Job>, endpoint: Endpoint) async {
        var iterator = jobs.makeAsyncIterator()
        var pending = await iterator.next()
        while let job = pending {
            do {
                try await HTTP1Client.withConnection(to: endpoint) { connection in
                    while let job = pending {
                        // No timeout of our own: the proxy answers 504 after its response timeout.
                        let response = try await connection.send(job.request)
                        record(job.request, due: job.due, response: response)
                        pending = await iterator.next()
                        if response[header: "connection"]?.lowercased() == "close" { return }
                    }
                }
            } catch {
                record(job.request, due: job.due, error: error)
                pending = await iterator.next()
            }
        }
    }

    private func record(_ request: HTTPRequest, due: ContinuousClock.Instant, response: HTTPResponse) {
        append(Sample(
            due: (due - start).seconds, latency: (ContinuousClock.now - due).seconds, failed: response.status >= 500,
            status: response.status, error: response[header: "x-baton-error"], request: "\(request.method) \(request.path)"
        ))
    }

    private func record(_ request: HTTPRequest, due: ContinuousClock.Instant, error: any Error) {
        append(Sample(
            due: (due - start).seconds, latency: (ContinuousClock.now - due).seconds, failed: true,
            status: nil, error: "\(error)", request: "\(request.method) \(request.path)"
        ))
    }

    private func append(_ sample: Sample) {
        samples.withLockedValue { $0.append(sample) }
    }

    /// Seconds since the load started.
    public var elapsed: Double { (ContinuousClock.now - start).seconds }

    /// Stops starting requests, waits for the ones in flight, returns every sample.
    public func stop() async -> [Sample] {
        stopping.store(true, ordering: .relaxed)
        let running = task.withLockedValue { $0 }
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
