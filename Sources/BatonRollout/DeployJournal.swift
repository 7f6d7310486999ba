import BatonCore
import Foundation

/// The append-only record of deployments, read from a `StateStore`: each event is stored
/// before the step it announces runs, so a crashed deploy can be resumed, from any machine
/// that shares the store.
public struct DeployJournal: Sendable {
    public let store: any StateStore

    /// One deployment as the journal tells it.
    public struct Deployment: Sendable, Equatable {
        public var id: String
        public var target: String
        public var previous: String?
        public var nodes: [String]
        public var isRollback: Bool
        public var events: [RolloutEvent]
        /// How its target is run (nil in journals written before settings were recorded).
        public var settings: ReleaseSettings? { events.first?.settings }

        public var finished: Bool { events.contains { $0.kind == .finished } }
        public var failed: Bool { events.contains { $0.kind == .failed } }
        public var interrupted: Bool { !finished && !failed }
        public var rollingBack: Bool { events.contains { $0.kind == .rollbackStarted } }
        /// The release the fleet is meant to run once this deployment is over.
        public var outcome: String? { finished ? target : (failed ? previous : nil) }
        /// Where it stopped: the last step event.
        public var lastStep: RolloutEvent? { events.last { $0.kind == .step } }
        /// Who started it (user@host), when recorded.
        public var actor: String? { events.first?.actor }
        /// The Baton that ran it.
        public var baton: String? { events.first?.baton }
    }

    public init(store: any StateStore) {
        self.store = store
    }

    /// The journal file of a state directory (`journal.jsonl`).
    public init(path: String) {
        self.init(store: FileStateStore(journalPath: path))
    }

    public func append(_ event: RolloutEvent) async throws {
        try await store.append(event)
    }

    public func events() async throws -> [RolloutEvent] {
        try await store.events()
    }

    public func deployments() async throws -> [Deployment] {
        var order: [String] = []
        var byID: [String: Deployment] = [:]
        for event in try await events() {
            if event.kind == .deployStarted {
                order.append(event.deployment)
                byID[event.deployment] = Deployment(
                    id: event.deployment, target: event.target ?? "?", previous: event.previous,
                    nodes: event.nodes ?? [], isRollback: event.isRollback ?? false, events: [event]
                )
            } else {
                byID[event.deployment]?.events.append(event)
            }
        }
        return order.compactMap { byID[$0] }
    }

    /// The release the fleet runs according to the last deployment that ended.
    public func currentRelease() async throws -> String? {
        try await deployments().reversed().lazy.compactMap(\.outcome).first
    }

    /// How `release` was run when it was last deployed (a finished deployment preferred), or
    /// nil when the journal has no record of it.
    public func settings(of release: String) async throws -> ReleaseSettings? {
        let deployments = try await deployments().filter { $0.target == release && $0.settings != nil }
        return (deployments.last(where: \.finished) ?? deployments.last)?.settings
    }

    /// Every deployment, newest first, as `baton history` shows it.
    public func history() async throws -> [HistoryEntry] {
        try await deployments().reversed().map(HistoryEntry.init)
    }

    public func interrupted() async throws -> Deployment? {
        guard let last = try await deployments().last, last.interrupted else { return nil }
        return last
    }
}
