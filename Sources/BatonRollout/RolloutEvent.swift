import Foundation

/// One thing that happened in a deployment. Every event is appended to the journal (flushed
/// before the step it announces takes effect) and shown by the reporter.
public struct RolloutEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case deployStarted, step, observed, rollbackStarted, finished, failed, message
    }

    /// Steps of one node (shared/DESIGN.md's step machine).
    public enum Step: String, Codable, Sendable, CaseIterable {
        case draining, drained, stopping, stopped, starting, warming, admitting, admitted, done, skipped
    }

    public var time: Date
    public var deployment: String
    public var kind: Kind
    public var node: String?
    public var step: Step?
    public var release: String?
    /// deployStarted: the target, the release it replaces, node order and whether it is a rollback.
    public var target: String?
    public var previous: String?
    public var nodes: [String]?
    public var isRollback: Bool?
    /// deployStarted: how the target release is run and checked (see ReleaseSettings).
    public var settings: ReleaseSettings?
    /// deployStarted: who started it, user@host.
    public var actor: String?
    /// The Baton that ran the deployment (`BatonVersion.description`), on deployStarted.
    public var baton: String?
    public var detail: String?

    public init(
        deployment: String, kind: Kind, node: String? = nil, step: Step? = nil, release: String? = nil,
        target: String? = nil, previous: String? = nil, nodes: [String]? = nil, isRollback: Bool? = nil,
        settings: ReleaseSettings? = nil, actor: String? = nil, baton: String? = nil, detail: String? = nil, time: Date = Date()
    ) {
        self.time = time
        self.deployment = deployment
        self.kind = kind
        self.node = node
        self.step = step
        self.release = release
        self.target = target
        self.previous = previous
        self.nodes = nodes
        self.isRollback = isRollback
        self.settings = settings
        self.actor = actor
        self.baton = baton
        self.detail = detail
    }
}
