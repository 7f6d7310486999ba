import BatonProbe
import BatonRollout
import Foundation

/// The deploy's events worth drawing on a probe report's time axis, in seconds from `start`;
/// a rollback is called one, from its start to its end.
public func deployMarkers(_ events: [RolloutEvent], since start: Date) -> [ReportWriter.Marker] {
    var rollbacks = Set<String>()
    return events.compactMap { event in
        if event.kind == .deployStarted, event.isRollback == true { rollbacks.insert(event.deployment) }
        guard event.time >= start else { return nil }
        let what = rollbacks.contains(event.deployment) ? "rollback" : "deploy"
        let label: String
        switch event.kind {
        case .deployStarted: label = "\(what) \(what == "rollback" ? "to " : "")\(event.target ?? "")"
        case .step where event.step == .draining || event.step == .admitted:
            label = "\(event.node ?? "") \(event.step!.rawValue) \(event.release ?? "")"
        case .finished: label = "\(what) finished"
        case .failed: label = "\(what) failed"
        case .rollbackStarted: label = "rollback"
        default: return nil
        }
        return ReportWriter.Marker(at: event.time.timeIntervalSince(start), label: label)
    }
}
