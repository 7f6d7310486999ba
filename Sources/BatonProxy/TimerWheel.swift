import NIOCore

/// Coarse timers for the connections of one event loop: a hashed wheel of `slotCount` slots of
/// `resolution` each, turned by one scheduled task while any timer is set. Every client
/// connection keeps a header or idle timer and every request a response timer; as NIO
/// scheduled tasks each would cost a heap insert, and each cancellation a linear search of every
/// task on the loop, which grows with the number of open connections. Here setting and
/// cancelling are O(1), and a timer fires at the first turn at or after its deadline (at most
/// `resolution` late; never early).
///
/// Event-loop bound: everything runs on `eventLoop`.
final class TimerWheel: @unchecked Sendable {
    /// A set timer; `cancel()` before it fires and it never does.
    final class Timer {
        let deadline: NIODeadline
        fileprivate var action: (() -> Void)?
        fileprivate let slot: Int
        fileprivate unowned let wheel: TimerWheel

        fileprivate init(deadline: NIODeadline, slot: Int, wheel: TimerWheel, action: @escaping () -> Void) {
            self.deadline = deadline
            self.slot = slot
            self.wheel = wheel
            self.action = action
        }

        func cancel() {
            guard action != nil else { return }
            action = nil
            wheel.remove(self)
        }
    }

    let eventLoop: any EventLoop
    private let resolution: Int64
    private var slots: [[ObjectIdentifier: Timer]]
    private var count = 0
    /// The last slot (counted from the clock's zero) whose timers were run.
    private var turned: Int64 = 0
    private var turning = false

    init(eventLoop: any EventLoop, resolution: TimeAmount = .milliseconds(25), slotCount: Int = 2048) {
        self.eventLoop = eventLoop
        self.resolution = resolution.nanoseconds
        self.slots = Array(repeating: [:], count: slotCount)
    }

    /// Runs `action` on the event loop at the first turn at or after `deadline`.
    func schedule(at deadline: NIODeadline, _ action: @escaping () -> Void) -> Timer {
        eventLoop.preconditionInEventLoop()
        if !turning {
            turning = true
            turned = slotNumber(rounding: .now(), up: false)
            scheduleTurn()
        }
        // The slot whose turn comes at or after the deadline, and after the last turn.
        let absolute = max(slotNumber(rounding: deadline, up: true), turned + 1)
        let timer = Timer(deadline: deadline, slot: Int(absolute % Int64(slots.count)), wheel: self, action: action)
        slots[timer.slot][ObjectIdentifier(timer)] = timer
        count += 1
        return timer
    }

    private func remove(_ timer: Timer) {
        if slots[timer.slot].removeValue(forKey: ObjectIdentifier(timer)) != nil { count -= 1 }
    }

    private func slotNumber(rounding deadline: NIODeadline, up: Bool) -> Int64 {
        // Clamped so rounding up cannot overflow (`distantFuture`, a saturated timeout).
        let nanoseconds = min(Int64(clamping: deadline.uptimeNanoseconds), Int64.max - resolution)
        return up ? (nanoseconds + resolution - 1) / resolution : nanoseconds / resolution
    }

    private func scheduleTurn() {
        let next = NIODeadline.uptimeNanoseconds(UInt64((turned + 1) * resolution))
        eventLoop.assumeIsolated().scheduleTask(deadline: next) { [self] in turn() }
    }

    /// Runs the due timers of every slot since the last turn (a busy loop may turn late), then
    /// schedules the next turn while timers remain.
    private func turn() {
        let now = NIODeadline.now()
        let current = slotNumber(rounding: now, up: false)
        // One full round visits every slot; a longer stall needs no more.
        let first = max(turned + 1, current - Int64(slots.count) + 1)
        var due: [Timer] = []
        if first <= current {
            for absolute in first...current {
                let index = Int(absolute % Int64(slots.count))
                for timer in slots[index].values where timer.deadline <= now { due.append(timer) }
            }
        }
        turned = max(turned, current)
        for timer in due where timer.action != nil {
            remove(timer)
            let action = timer.action
            timer.action = nil
            action?()
        }
        if count > 0 {
            scheduleTurn()
        } else {
            turning = false
        }
    }
}
