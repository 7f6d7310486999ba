import BatonRollout
import Testing

@Suite struct RolloutStateMachineTests {
    @Test func canaryThenBatchesWithObserveAfterEach() {
        var machine = RolloutStateMachine(nodes: ["a", "b", "c", "d", "e"], batchSize: 2, canary: 1, observes: true, pauses: false)
        #expect(machine.batches == [["a"], ["b", "c"], ["d", "e"]])
        #expect(machine.start() == .upgrade(["a"]))
        #expect(machine.batchSucceeded() == .observe(["a"]))
        #expect(machine.observeSucceeded() == .upgrade(["b", "c"]))
        #expect(machine.batchSucceeded() == .observe(["b", "c"]))
        #expect(machine.observeSucceeded() == .upgrade(["d", "e"]))
        #expect(machine.batchSucceeded() == .observe(["d", "e"]))
        #expect(machine.observeSucceeded() == .finished)
        #expect(machine.phase == .finished)
    }

    @Test func pausesBetweenBatchesButNotAfterTheLast() {
        var machine = RolloutStateMachine(nodes: ["a", "b"], batchSize: 1, canary: 0, observes: false, pauses: true)
        #expect(machine.start() == .upgrade(["a"]))
        #expect(machine.batchSucceeded() == .pause)
        #expect(machine.pauseElapsed() == .upgrade(["b"]))
        #expect(machine.batchSucceeded() == .finished)
    }

    @Test func failureRollsBackEveryTouchedNode() {
        var machine = RolloutStateMachine(nodes: ["a", "b", "c"], batchSize: 1, canary: 1, observes: false, pauses: false)
        _ = machine.start()
        _ = machine.batchSucceeded()
        #expect(machine.batchFailed(reason: "b unhealthy") == .rollback(nodes: ["a", "b"], reason: "b unhealthy"))
        #expect(machine.rollbackFinished() == .failed(reason: "b unhealthy"))
    }

    @Test func aResumedRollbackTakesEveryNodeBackAndEndsFailed() {
        var machine = RolloutStateMachine(nodes: ["a", "b", "c"], batchSize: 1, canary: 1, observes: true, pauses: false)
        #expect(machine.resumeRollback(reason: "b unreachable") == .rollback(nodes: ["a", "b", "c"], reason: "b unreachable"))
        #expect(machine.phase == .rollingBack)
        #expect(machine.start() == .failed(reason: "rollout started twice"))
        #expect(machine.rollbackFinished() == .failed(reason: "b unreachable"))
    }

    @Test func observeBreachOnTheCanaryRollsBackTheCanary() {
        var machine = RolloutStateMachine(nodes: ["a", "b"], batchSize: 1, canary: 1, observes: true, pauses: false)
        _ = machine.start()
        _ = machine.batchSucceeded()
        #expect(machine.observeBreached(reason: "5xx 100%") == .rollback(nodes: ["a"], reason: "5xx 100%"))
    }

    @Test func noCanaryAndLargeBatches() {
        let machine = RolloutStateMachine(nodes: ["a", "b", "c"], batchSize: 5, canary: 0, observes: false, pauses: false)
        #expect(machine.batches == [["a", "b", "c"]])
    }
}
