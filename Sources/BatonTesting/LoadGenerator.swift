import BatonCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization

/// Closed-loop load for tests: `concurrency` workers, each on its own keep-alive connection,
/// send requests back to back until stopped (or `limit` passes, so a forgotten stop still ends).
/// A transport error or a 5xx is a failure; each is recorded with its cause.
public final class LoadGenerator: Sendable {
    public struct Result: Sendable {
        public var succeeded = 0
        public var failures: [String] = []
        public var byBackend: [String: Int] = [:]
        public var total: Int { succeeded + failures.count }
    }

    private let stopped = Atomic<Bool>(false)
    private let result = NIOLockedValueBox(Result())
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)

    /// Starts the workers. `request` gives the i-th request of a worker.
    public static func start(
        against endpoint: Endpoint,
        concurrency: Int,
        limit: Duration = .seconds(120),
        request: @escaping @Sendable (_ worker: Int, _ index: Int) -> HTTPRequest
    ) -> LoadGenerator {
        let load = LoadGenerator()
        let start = ContinuousClock.now
        load.task.withLockedValue {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    for worker in 0..<concurrency {
                        group.addTask {
                            await load.work(worker: worker, endpoint: endpoint, until: start + limit, request: request)
                        }
                    }
                }
            }
        }
        return load
    }

    /// Requests finished so far.
    public var completed: Int { result.withLockedValue { $0.total } }

    /// Stops the workers after their current request and returns what they saw.
    public func stop() async -> Result {
        stopped.store(true, ordering: .relaxed)
        await task.withLockedValue { $0 }?.value
        return result.withLockedValue { $0 }
    }

    private func work(
        worker: Int,
        endpoint: Endpoint,
        until deadline: ContinuousClock.Instant,
        request: @Sendable (Int, Int) -> HTTPRequest
    ) async {
        var index = 0
        while !stopped.load(ordering: .relaxed) && ContinuousClock.now < deadline {
            do {
                try await HTTP1Client.withConnection(to: endpoint) { connection in
                    while !stopped.load(ordering: .relaxed) && ContinuousClock.now < deadline {
                        let next = request(worker, index)
                        index += 1
                        let response: HTTPResponse
                        do {
                            response = try await connection.send(next)
                        } catch {
                            record(failure: "\(next.method) \(next.path): \(error)")
                            return
                        }
                        if response.status >= 500 {
                            record(failure: "\(next.method) \(next.path): \(response.status) \(response[header: "x-baton-error"] ?? "") \(response.bodyString)")
                        } else {
                            record(success: response[header: "x-baton-backend"] ?? "?")
                        }
                        if response[header: "connection"] == "close" { return }
                    }
                }
            } catch {
                record(failure: "connect: \(error)")
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    private func record(success backend: String) {
        result.withLockedValue {
            $0.succeeded += 1
            $0.byBackend[backend, default: 0] += 1
        }
    }

    private func record(failure: String) {
        result.withLockedValue { $0.failures.append(failure) }
    }
}
