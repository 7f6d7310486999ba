/// Requests waiting because no backend is ready, oldest first. Pure bookkeeping: the pool
/// decides when to release them and the event loops time them out.
struct HoldQueue<Waiter> {
    private var waiters: [(id: UInt64, waiter: Waiter)] = []
    private var nextID: UInt64 = 0

    var count: Int { waiters.count }

    mutating func enqueue(_ waiter: Waiter) -> UInt64 {
        nextID += 1
        waiters.append((nextID, waiter))
        return nextID
    }

    /// Removes a waiter whose time ran out; nil when it was already released.
    mutating func remove(id: UInt64) -> Waiter? {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
        return waiters.remove(at: index).waiter
    }

    /// Takes the oldest waiter.
    mutating func dequeue() -> Waiter? {
        waiters.isEmpty ? nil : waiters.removeFirst().waiter
    }
}

extension HoldQueue: Sendable where Waiter: Sendable {}
