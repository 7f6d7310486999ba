import NIOCore

/// A timer that is cheap to move later. Deadlines that only ever grow (a new request, more
/// progress) just store a time; the scheduled task, when it fires, asks its owner and re-arms for
/// what is left. So a busy connection schedules about one task per timeout period, not several
/// per request. Event-loop bound, like its owner.
struct DeadlineTimer {
    private var scheduled: Scheduled<Void>?
    private var firesAt = NIODeadline.distantFuture

    /// Whether `fire(by:)` would have to schedule: callers on a hot path ask first, so no
    /// closure is made for the usual later deadline.
    func needsArming(by deadline: NIODeadline) -> Bool {
        scheduled == nil || deadline < firesAt
    }

    /// Makes sure the timer fires no later than `deadline`; `fire` runs on `eventLoop`.
    mutating func fire(by deadline: NIODeadline, on eventLoop: any EventLoop, _ fire: @escaping () -> Void) {
        guard scheduled == nil || deadline < firesAt else { return }
        scheduled?.cancel()
        firesAt = deadline
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: deadline, fire)
    }

    /// To be called first thing in `fire`.
    mutating func fired() {
        scheduled = nil
        firesAt = .distantFuture
    }

    mutating func cancel() {
        scheduled?.cancel()
        fired()
    }
}
