/// The life of one backend in the pool, kept pure so every transition can be unit-tested.
///
/// Two things decide whether a backend takes traffic: what the operator asked for (enabled,
/// draining, removed) and what health checks observed (unknown, healthy, unhealthy). `state`
/// folds them into the one word the admin API and metrics show.
public struct BackendStateMachine: Sendable, Equatable {
    public enum State: String, Sendable, Codable, CaseIterable {
        /// Added; waiting for `rise` passing health checks before it takes traffic.
        case adding
        /// Takes new requests.
        case ready
        /// Enabled, but health checks (or a failed connect) say it cannot serve.
        case unhealthy
        /// Takes no new requests; in-flight ones are finishing.
        case draining
        /// Drained: no new requests, none in flight.
        case drained
        /// Gone from the pool.
        case removed
    }

    enum Admin: Equatable { case enabled, draining, drained, removed }
    enum Health: Equatable { case unknown, healthy, unhealthy }

    /// What the pool must do after a transition.
    public enum Action: Equatable, Sendable {
        case none
        /// The backend started taking traffic: wake held requests.
        case becameRoutable
        /// The backend stopped taking traffic: close its idle connections.
        case stoppedRouting
    }

    public let rise: Int
    public let fall: Int
    private(set) var admin: Admin
    private(set) var health: Health
    private(set) var passes = 0
    private(set) var failures = 0

    public init(rise: Int, fall: Int, startHealthy: Bool = false, startDrained: Bool = false) {
        precondition(rise >= 1 && fall >= 1)
        self.rise = rise
        self.fall = fall
        self.admin = startDrained ? .drained : .enabled
        self.health = startHealthy ? .healthy : .unknown
    }

    public var state: State {
        switch (admin, health) {
        case (.removed, _): return .removed
        case (.drained, _): return .drained
        case (.draining, _): return .draining
        case (.enabled, .healthy): return .ready
        case (.enabled, .unhealthy): return .unhealthy
        case (.enabled, .unknown): return .adding
        }
    }

    /// Whether new requests may be sent to it.
    public var isRoutable: Bool { state == .ready }

    public var isHealthy: Bool { health == .healthy }

    public mutating func healthCheck(passed: Bool) -> Action {
        guard admin != .removed else { return .none }
        return transition {
            if passed {
                $0.failures = 0
                $0.passes += 1
                if $0.health != .healthy && $0.passes >= $0.rise { $0.health = .healthy }
            } else {
                $0.passes = 0
                $0.failures += 1
                // A backend never seen healthy needs no `fall` count to stay out of rotation.
                if $0.health == .unknown || $0.failures >= $0.fall { $0.health = .unhealthy }
            }
        }
    }

    /// A connect to the backend failed: take it out of rotation at once (passive health);
    /// active checks must see `rise` passes before it returns.
    public mutating func connectFailed() -> Action {
        guard admin != .removed else { return .none }
        return transition {
            $0.passes = 0
            $0.health = .unhealthy
        }
    }

    public mutating func drain() -> Action {
        guard admin == .enabled else { return .none }
        return transition { $0.admin = .draining }
    }

    /// The last in-flight request of a draining backend finished (or the drain timed out).
    public mutating func drainFinished() -> Action {
        guard admin == .draining else { return .none }
        return transition { $0.admin = .drained }
    }

    /// Put a drained or draining backend back into rotation; it takes traffic again as soon as
    /// it is healthy.
    public mutating func markReady() -> Action {
        guard admin == .draining || admin == .drained else { return .none }
        return transition { $0.admin = .enabled }
    }

    public mutating func remove() -> Action {
        guard admin != .removed else { return .none }
        return transition { $0.admin = .removed }
    }

    private mutating func transition(_ change: (inout BackendStateMachine) -> Void) -> Action {
        let wasRoutable = isRoutable
        change(&self)
        switch (wasRoutable, isRoutable) {
        case (false, true): return .becameRoutable
        case (true, false): return .stoppedRouting
        default: return .none
        }
    }
}
