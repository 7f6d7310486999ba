import Foundation

/// One line of `baton history`: who deployed what, when, and how it ended.
public struct HistoryEntry: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case finished
        /// Failed, and every node went back to the previous release.
        case rolledBack = "rolled back"
        case failed
        /// Stopped part-way (killed, or a rollback that could not reach a node): resumable; or
        /// still running (`baton lock status` tells which).
        case interrupted
    }

    public var deployment: String
    public var kind: String
    public var release: String
    public var previous: String?
    /// user@host, when the journal recorded it.
    public var by: String?
    /// The Baton version that ran it, when the journal recorded it.
    public var baton: String?
    public var started: Date
    public var ended: Date?
    public var outcome: Outcome
    /// Why it failed or rolled back.
    public var reason: String?

    public init(_ deployment: DeployJournal.Deployment) {
        self.deployment = deployment.id
        kind = deployment.isRollback ? "rollback" : "deploy"
        release = deployment.target
        previous = deployment.previous
        by = deployment.actor
        baton = deployment.baton
        started = deployment.events.first?.time ?? .distantPast
        let end = deployment.events.last { $0.kind == .finished || $0.kind == .failed }
        ended = end?.time
        reason = end?.kind == .failed ? end?.detail : nil
        if deployment.finished {
            outcome = .finished
        } else if let end, end.kind == .failed {
            // A completed rollback records the release it returned to, and says so.
            let back = "rolled back to \(deployment.previous ?? "")"
            if end.release != nil, end.release == deployment.previous, let detail = end.detail, detail.hasPrefix(back) {
                outcome = .rolledBack
                reason = detail.hasPrefix(back + ": ") ? String(detail.dropFirst(back.count + 2)) : nil
            } else {
                outcome = .failed
            }
        } else {
            outcome = .interrupted
        }
    }
}
