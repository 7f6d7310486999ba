import BatonCore
import Foundation

/// The append-only record of deployments: one JSON object a line in `journal.jsonl`, each
/// written and fsynced before the step it announces runs, so a crashed deploy can be resumed.
public final class DeployJournal: Sendable {
    public let path: String

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
    }

    public init(path: String) {
        self.path = path
    }

    public func append(_ event: RolloutEvent) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(event)
        line.append(0x0A)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatonError(.io, "\(path): cannot open the journal (errno \(errno))") }
        defer { close(fd) }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count, fsync(fd) == 0 else { throw BatonError(.io, "\(path): cannot write the journal (errno \(errno))") }
    }

    public func events() throws -> [RolloutEvent] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var events: [RolloutEvent] = []
        for (index, line) in data.split(separator: 0x0A).enumerated() {
            do {
                events.append(try decoder.decode(RolloutEvent.self, from: Data(line)))
            } catch {
                // A torn last line (killed mid-write) is the only damage an append-only file
                // can take; anything else is reported.
                if index == data.split(separator: 0x0A).count - 1 { break }
                throw BatonError(.invalidConfiguration, "\(path):\(index + 1): unreadable journal line (\(error))")
            }
        }
        return events
    }

    public func deployments() throws -> [Deployment] {
        var order: [String] = []
        var byID: [String: Deployment] = [:]
        for event in try events() {
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
    public func currentRelease() throws -> String? {
        try deployments().reversed().lazy.compactMap(\.outcome).first
    }

    /// How `release` was run when it was last deployed (a finished deployment preferred), or
    /// nil when the journal has no record of it.
    public func settings(of release: String) throws -> ReleaseSettings? {
        let deployments = try deployments().filter { $0.target == release && $0.settings != nil }
        return (deployments.last(where: \.finished) ?? deployments.last)?.settings
    }

    public func interrupted() throws -> Deployment? {
        guard let last = try deployments().last, last.interrupted else { return nil }
        return last
    }
}
