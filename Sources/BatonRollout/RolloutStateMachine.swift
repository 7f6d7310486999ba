/// The order of a rollout, kept pure: which nodes to upgrade together, when to observe, pause or
/// roll back. The orchestrator performs the actions and reports back.
///
/// Batches: the first `canary` nodes, then the rest, each cut to `batchSize` (`max_unavailable`,
/// or `max_surge` when surging). After every batch an observe window (when configured) decides
/// whether to go on; a failed step or a breached window rolls back every node touched so far.
public struct RolloutStateMachine: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case upgrade([String])
        case observe([String])
        case pause
        case rollback(nodes: [String], reason: String)
        case finished
        case failed(reason: String)
    }

    public enum Phase: Sendable, Equatable {
        case notStarted, upgrading, observing, pausing, rollingBack, finished, failed
    }

    public let batches: [[String]]
    public let observes: Bool
    public let pauses: Bool
    public private(set) var phase = Phase.notStarted
    public private(set) var batchIndex = 0
    /// Nodes this deployment has started to change, in order.
    public private(set) var touched: [String] = []
    private var failure: String?

    public init(nodes: [String], batchSize: Int, canary: Int, observes: Bool, pauses: Bool) {
        precondition(batchSize >= 1)
        let canaries = Array(nodes.prefix(canary))
        let rest = Array(nodes.dropFirst(canary))
        batches = Self.chunk(canaries, batchSize) + Self.chunk(rest, batchSize)
        self.observes = observes
        self.pauses = pauses
    }

    public mutating func start() -> Action {
        guard phase == .notStarted else { return .failed(reason: "rollout started twice") }
        return nextBatch()
    }

    /// Goes on with a rollback that an earlier run began and did not finish (it crashed, or a
    /// node could not be reached): which nodes that run had touched is not known, so every node
    /// of the deployment goes back (a node already back is skipped by the orchestrator).
    public mutating func resumeRollback(reason: String) -> Action {
        guard phase == .notStarted else { return .failed(reason: "rollout started twice") }
        touched = batches.flatMap { $0 }
        return rollback(reason)
    }

    public mutating func batchSucceeded() -> Action {
        guard phase == .upgrading else { return .failed(reason: "no batch was running") }
        if observes {
            phase = .observing
            return .observe(batches[batchIndex])
        }
        return afterBatch()
    }

    public mutating func batchFailed(reason: String) -> Action {
        rollback(reason)
    }

    public mutating func observeSucceeded() -> Action {
        guard phase == .observing else { return .failed(reason: "nothing was being observed") }
        return afterBatch()
    }

    public mutating func observeBreached(reason: String) -> Action {
        rollback(reason)
    }

    public mutating func pauseElapsed() -> Action {
        guard phase == .pausing else { return .failed(reason: "no pause was running") }
        batchIndex += 1
        return nextBatch()
    }

    public mutating func rollbackFinished() -> Action {
        phase = .failed
        return .failed(reason: failure ?? "rolled back")
    }

    private mutating func afterBatch() -> Action {
        if batchIndex + 1 < batches.count && pauses {
            phase = .pausing
            return .pause
        }
        batchIndex += 1
        return nextBatch()
    }

    private mutating func nextBatch() -> Action {
        guard batchIndex < batches.count else {
            phase = .finished
            return .finished
        }
        phase = .upgrading
        touched += batches[batchIndex]
        return .upgrade(batches[batchIndex])
    }

    private mutating func rollback(_ reason: String) -> Action {
        phase = .rollingBack
        failure = reason
        return .rollback(nodes: touched, reason: reason)
    }

    private static func chunk(_ nodes: [String], _ size: Int) -> [[String]] {
        stride(from: 0, to: nodes.count, by: size).map { Array(nodes[$0..<min($0 + size, nodes.count)]) }
    }
}
