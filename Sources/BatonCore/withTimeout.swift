/// Runs `body`, cancelling it and throwing a `.timeout` BatonError when it takes longer than
/// `timeout`. `operation` names what timed out in the message.
public func withTimeout<Result: Sendable>(
    _ timeout: Duration,
    operation: String,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw BatonError(.timeout, "\(operation) timed out after \(timeout.shortDescription)")
        }
        return result
    }
}
