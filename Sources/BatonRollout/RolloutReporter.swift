import Foundation
import NIOConcurrencyHelpers

/// Shows rollout events to a person or a script.
public protocol RolloutReporter: Sendable {
    func report(_ event: RolloutEvent)
    /// Called while waiting (observe, pause) so a live display can tick.
    func tick(_ message: String)
}

extension RolloutReporter {
    public func tick(_ message: String) {}
}

/// Picks the display: live lines on a terminal, one plain line per event otherwise, or JSON lines.
public func makeReporter(json: Bool) -> any RolloutReporter {
    if json { return JSONLinesReporter() }
    return isatty(STDOUT_FILENO) == 1 ? TerminalReporter() : PlainReporter()
}

/// One line per event, for logs and CI.
public struct PlainReporter: RolloutReporter {
    public init() {}

    public func report(_ event: RolloutEvent) {
        print(Self.line(event))
        fflush(nil)
    }

    static func line(_ event: RolloutEvent) -> String {
        let time = ISO8601DateFormatter.string(from: event.time, timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
        switch event.kind {
        case .deployStarted:
            let what = event.isRollback == true ? "rollback to" : "deploy"
            return "\(time) \(what) \(event.target ?? "?") (from \(event.previous ?? "nothing")) on \(event.nodes?.joined(separator: ", ") ?? "")"
        case .step:
            return "\(time) \(event.node ?? "-") \(event.step?.rawValue ?? "") \(event.release ?? "")\(event.detail.map { ": \($0)" } ?? "")"
        case .observed, .message:
            return "\(time) \(event.detail ?? "")"
        case .rollbackStarted:
            return "\(time) ROLLBACK: \(event.detail ?? "")"
        case .finished:
            return "\(time) done: \(event.detail ?? "")"
        case .failed:
            return "\(time) FAILED: \(event.detail ?? "")"
        }
    }
}

/// Events as JSON lines, for scripts.
public struct JSONLinesReporter: RolloutReporter {
    public init() {}

    public func report(_ event: RolloutEvent) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        if let data = try? encoder.encode(event) { print(String(decoding: data, as: UTF8.self)) }
        fflush(nil)
    }
}

/// A live view on a terminal: a line per node (step, release, time in step) and a bar for the
/// whole deployment, redrawn in place; messages scroll above it.
public final class TerminalReporter: RolloutReporter {
    private struct NodeLine {
        var step = "waiting"
        var release = ""
        var since = Date()
    }

    private struct State {
        var order: [String] = []
        var nodes: [String: NodeLine] = [:]
        var done = 0
        var drawnLines = 0
        var status = ""
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public func report(_ event: RolloutEvent) {
        state.withLockedValue { state in
            switch event.kind {
            case .deployStarted:
                state.order = event.nodes ?? []
                for node in state.order { state.nodes[node] = NodeLine() }
                state.done = 0
                Self.scroll(&state, PlainReporter.line(event))
            case .step:
                guard let node = event.node else { break }
                state.nodes[node] = NodeLine(step: event.step?.rawValue ?? "", release: event.release ?? "", since: event.time)
                if event.step == .done || event.step == .skipped { state.done += 1 }
            case .finished, .failed:
                state.status = ""
                Self.scroll(&state, PlainReporter.line(event))
            default:
                Self.scroll(&state, PlainReporter.line(event))
            }
            Self.draw(&state)
        }
    }

    public func tick(_ message: String) {
        state.withLockedValue { state in
            state.status = message
            Self.draw(&state)
        }
    }

    private static func scroll(_ state: inout State, _ line: String) {
        clear(&state)
        print(line)
    }

    private static func clear(_ state: inout State) {
        if state.drawnLines > 0 { print("\u{1B}[\(state.drawnLines)A\u{1B}[J", terminator: "") }
        state.drawnLines = 0
    }

    private static func draw(_ state: inout State) {
        clear(&state)
        var lines: [String] = []
        for node in state.order {
            let line = state.nodes[node] ?? NodeLine()
            let elapsed = Int(Date().timeIntervalSince(line.since))
            lines.append("  \(node.padding(toLength: 12, withPad: " ", startingAt: 0)) \(line.step.padding(toLength: 10, withPad: " ", startingAt: 0)) \(line.release.padding(toLength: 8, withPad: " ", startingAt: 0)) \(elapsed)s")
        }
        let total = max(state.order.count, 1)
        let filled = 30 * state.done / total
        lines.append("  [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: 30 - filled))] \(state.done)/\(state.order.count) \(state.status)")
        print(lines.joined(separator: "\n"))
        state.drawnLines = lines.count
        fflush(nil)
    }
}

/// Keeps events in memory (tests).
public final class CollectingReporter: RolloutReporter {
    private let collected = NIOLockedValueBox<[RolloutEvent]>([])
    public init() {}
    public func report(_ event: RolloutEvent) { collected.withLockedValue { $0.append(event) } }
    public var events: [RolloutEvent] { collected.withLockedValue { $0 } }
}
