import BatonProbe
import BatonRollout
import Foundation

/// The deploy's events worth drawing on a probe report's time axis, in seconds from `start`.
public func deployMarkers(_ events: [RolloutEvent], since start: Date) -> [ReportWriter.Marker] {
    events.filter { $0.time >= start }.compactMap { event in
        let label: String
        switch event.kind {
        case .deployStarted: label = "deploy \(event.target ?? "")"
        case .step where event.step == .draining || event.step == .admitted:
            label = "\(event.node ?? "") \(event.step!.rawValue) \(event.release ?? "")"
        case .finished: label = "deploy finished"
        case .failed: label = "deploy failed"
        case .rollbackStarted: label = "rollback"
        default: return nil
        }
        return ReportWriter.Marker(at: event.time.timeIntervalSince(start), label: label)
    }
}
