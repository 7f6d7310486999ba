@testable import BatonProxy
import Testing

@Suite struct BackendStateMachineTests {
    @Test func newBackendNeedsRisePassesBeforeTraffic() {
        var machine = BackendStateMachine(rise: 2, fall: 3)
        #expect(machine.state == .adding)
        #expect(machine.healthCheck(passed: true) == .none)
        #expect(machine.state == .adding)
        #expect(machine.healthCheck(passed: true) == .becameRoutable)
        #expect(machine.state == .ready)
        #expect(machine.isRoutable)
    }

    @Test func aFailureResetsTheRiseCount() {
        var machine = BackendStateMachine(rise: 2, fall: 3)
        _ = machine.healthCheck(passed: true)
        _ = machine.healthCheck(passed: false)
        #expect(machine.state == .unhealthy)
        #expect(machine.healthCheck(passed: true) == .none)
        #expect(machine.healthCheck(passed: true) == .becameRoutable)
    }

    @Test func readyBackendFallsAfterFallFailures() {
        var machine = BackendStateMachine(rise: 1, fall: 3, startHealthy: true)
        #expect(machine.state == .ready)
        #expect(machine.healthCheck(passed: false) == .none)
        #expect(machine.healthCheck(passed: false) == .none)
        #expect(machine.state == .ready)
        #expect(machine.healthCheck(passed: false) == .stoppedRouting)
        #expect(machine.state == .unhealthy)
    }

    @Test func connectFailureTakesItOutAtOnce() {
        var machine = BackendStateMachine(rise: 2, fall: 3, startHealthy: true)
        #expect(machine.connectFailed() == .stoppedRouting)
        #expect(machine.state == .unhealthy)
        _ = machine.healthCheck(passed: true)
        #expect(machine.state == .unhealthy)
        #expect(machine.healthCheck(passed: true) == .becameRoutable)
    }

    @Test func drainThenReady() {
        var machine = BackendStateMachine(rise: 1, fall: 1, startHealthy: true)
        #expect(machine.drain() == .stoppedRouting)
        #expect(machine.state == .draining)
        // Health checks go on but do not route a draining backend.
        #expect(machine.healthCheck(passed: true) == .none)
        #expect(machine.drainFinished() == .none)
        #expect(machine.state == .drained)
        #expect(machine.markReady() == .becameRoutable)
        #expect(machine.state == .ready)
    }

    @Test func readyWhileUnhealthyWaitsForHealth() {
        var machine = BackendStateMachine(rise: 1, fall: 1, startDrained: true)
        #expect(machine.state == .drained)
        #expect(machine.markReady() == .none)
        #expect(machine.state == .adding)
        #expect(machine.healthCheck(passed: true) == .becameRoutable)
    }

    @Test func drainFinishedAfterReadyIsIgnored() {
        var machine = BackendStateMachine(rise: 1, fall: 1, startHealthy: true)
        _ = machine.drain()
        _ = machine.markReady()
        #expect(machine.drainFinished() == .none)
        #expect(machine.state == .ready)
    }

    @Test func removedIgnoresEverything() {
        var machine = BackendStateMachine(rise: 1, fall: 1, startHealthy: true)
        #expect(machine.remove() == .stoppedRouting)
        #expect(machine.healthCheck(passed: true) == .none)
        #expect(machine.markReady() == .none)
        #expect(machine.drain() == .none)
        #expect(machine.state == .removed)
    }

    @Test func holdQueueReleasesInOrderAndForgetsTimedOut() {
        var queue = HoldQueue<String>()
        let a = queue.enqueue("a")
        _ = queue.enqueue("b")
        let c = queue.enqueue("c")
        #expect(queue.remove(id: c) == "c")
        #expect(queue.remove(id: c) == nil)
        #expect(queue.dequeue() == "a")
        #expect(queue.remove(id: a) == nil)
        #expect(queue.dequeue() == "b")
        #expect(queue.dequeue() == nil)
        #expect(queue.count == 0)
    }
}
