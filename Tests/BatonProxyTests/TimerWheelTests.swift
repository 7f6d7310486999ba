@testable import BatonProxy
import NIOCore
import NIOPosix
import Testing

/// The wheel on a real event loop: timers fire never before their deadline and at most about
/// one resolution after it, across rounds of a small wheel, and cancelled ones never.
@Suite struct TimerWheelTests {
    /// Sets timers `after` each of `delays` on one wheel; returns (deadline, fired at) per timer,
    /// nil for one that did not fire within `wait`.
    func run(
        resolution: TimeAmount, slots: Int, delays: [TimeAmount], cancel: Set<Int> = [], wait: TimeAmount
    ) async throws -> [(deadline: NIODeadline, fired: NIODeadline?)] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let results = try await loop.submit {
            let wheel = TimerWheel(eventLoop: loop, resolution: resolution, slotCount: slots)
            let box = NIOLoopBound(Box(), eventLoop: loop)
            let start = NIODeadline.now()
            for (index, delay) in delays.enumerated() {
                let deadline = start + delay
                box.value.results.append((deadline, nil))
                let timer = wheel.schedule(at: deadline) { box.value.results[index].fired = .now() }
                if cancel.contains(index) { timer.cancel() }
            }
            return box
        }.get()
        try await Task.sleep(for: .nanoseconds(wait.nanoseconds))
        return try await loop.submit { results.value.results }.get()
    }

    final class Box { var results: [(deadline: NIODeadline, fired: NIODeadline?)] = [] }

    @Test func timersFireAfterTheirDeadlineWithinAboutOneResolution() async throws {
        let delays: [TimeAmount] = [.milliseconds(-5), .zero, .milliseconds(7), .milliseconds(30), .milliseconds(95), .milliseconds(260)]
        // Four slots of 20 ms: the 260 ms timer waits three rounds.
        let results = try await run(resolution: .milliseconds(20), slots: 4, delays: delays, wait: .milliseconds(600))
        for (deadline, fired) in results {
            let fired = try #require(fired, "a timer did not fire")
            #expect(fired >= deadline, "fired before its deadline")
            // One resolution, plus slack for a loaded machine.
            #expect(fired - deadline < .milliseconds(20 + 150), "fired \((fired - deadline).nanoseconds / 1_000_000) ms late")
        }
    }

    @Test func cancelledTimersNeverFire() async throws {
        let delays: [TimeAmount] = [.milliseconds(10), .milliseconds(20), .milliseconds(30), .milliseconds(40)]
        let results = try await run(resolution: .milliseconds(10), slots: 8, delays: delays, cancel: [1, 3], wait: .milliseconds(300))
        #expect(results.map { $0.fired != nil } == [true, false, true, false])
    }

    /// A deadline at the end of time (a saturated timeout) is kept, not an overflow.
    @Test func aDistantDeadlineNeverFires() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let fired = try await loop.submit {
            let wheel = TimerWheel(eventLoop: loop, resolution: .milliseconds(10), slotCount: 4)
            let box = NIOLoopBound(Box(), eventLoop: loop)
            let timer = wheel.schedule(at: .distantFuture) { box.value.results.append((.now(), .now())) }
            return NIOLoopBound((box.value, timer), eventLoop: loop)
        }.get()
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await loop.submit { fired.value.0.results.isEmpty }.get())
        try await loop.submit { fired.value.1.cancel() }.get()
    }

    /// A wheel that went quiet (no timers) starts turning again for the next one.
    @Test func aQuietWheelTurnsAgainForANewTimer() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let wheel = try await loop.submit { TimerWheel(eventLoop: loop, resolution: .milliseconds(10), slotCount: 16) }.get()
        for _ in 0..<2 {
            let fired = loop.makePromise(of: Void.self)
            try await loop.submit { _ = wheel.schedule(at: .now() + .milliseconds(15)) { fired.succeed(()) } }.get()
            try await fired.futureResult.get()
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}
