import NIOCore

/// A timer that is cheap to move later. Deadlines that only ever grow (a new request, more
/// progress) just store a time; the timer, when it fires, asks its owner and re-arms for what is
/// left. So a busy connection sets about one timer per timeout period, not several per request.
/// Event-loop bound, like its owner and its wheel.
struct DeadlineTimer {
    private var timer: TimerWheel.Timer?

    /// Whether `fire(by:)` would have to set a timer: callers on a hot path ask first, so no
    /// closure is made for the usual later deadline.
    func needsArming(by deadline: NIODeadline) -> Bool {
        guard let timer else { return true }
        return deadline < timer.deadline
    }

    /// Makes sure the timer fires no later than `deadline` (at the wheel's resolution).
    mutating func fire(by deadline: NIODeadline, on wheel: TimerWheel, _ fire: @escaping () -> Void) {
        guard needsArming(by: deadline) else { return }
        timer?.cancel()
        timer = wheel.schedule(at: deadline, fire)
    }

    /// To be called first thing in `fire`.
    mutating func fired() {
        timer = nil
    }

    mutating func cancel() {
        timer?.cancel()
        timer = nil
    }
}
