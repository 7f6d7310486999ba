import BatonCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What the admin API shows of a backend.
public struct BackendInfo: Codable, Sendable, Equatable {
    public var name: String
    public var address: String
    /// The app release it runs, when the deploy said.
    public var release: String?
    public var state: BackendStateMachine.State
    public var healthy: Bool
    public var inFlight: Int
    public var health: HealthCheck?
    /// What it served since it was added (filled in by the admin API).
    public var stats: BackendStats?
    /// Why the last failed health check failed ("GET /up answered 404", "connection refused"),
    /// until one passes.
    public var lastFailure: String?

    public init(
        name: String, address: String, release: String? = nil, state: BackendStateMachine.State, healthy: Bool, inFlight: Int,
        health: HealthCheck? = nil, stats: BackendStats? = nil, lastFailure: String? = nil
    ) {
        self.name = name
        self.address = address
        self.release = release
        self.state = state
        self.healthy = healthy
        self.inFlight = inFlight
        self.health = health
        self.stats = stats
        self.lastFailure = lastFailure
    }
}

/// How a drain ended.
public struct DrainResult: Codable, Sendable, Equatable {
    public var name: String
    /// In-flight requests still running at the drain timeout; their connections were closed.
    public var cut: Int
    public var elapsedMilliseconds: Int64

    public init(name: String, cut: Int, elapsedMilliseconds: Int64) {
        self.name = name
        self.cut = cut
        self.elapsedMilliseconds = elapsedMilliseconds
    }
}

/// The live set of backends: routing state, least-outstanding selection, and the queue of
/// requests held while nothing is ready. One lock guards it; the request path holds it for a
/// scan of the ready list only.
public final class BackendPool: Sendable {
    private struct Entry: Sendable {
        let backend: Backend
        var machine: BackendStateMachine
        var lastFailure: String?
        /// When it was last added or put back into rotation: the release of the most recent
        /// one that is ready is the one new sessions go to.
        var sequence: UInt64
    }

    private struct State: Sendable {
        var entries: [String: Entry] = [:]
        var order: [String] = []
        var ready: [Backend] = []
        var holds = HoldQueue<EventLoopPromise<Backend>>()
        var cursor = 0
        var sequence: UInt64 = 0
        /// The release of the ready backend added or re-admitted last: where requests without
        /// a live pin go while version affinity is on (nil: no ready backend says its release).
        var newest: String?
        /// Numbers the saved snapshots, so the store can drop one overtaken by a later one.
        var snapshots: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    private let group: any EventLoopGroup
    private let configuration: ProxyConfiguration
    private let metrics: ProxyMetrics
    private let logger: Logger
    private let added: AsyncStream<Backend>.Continuation
    /// Backends as they are added, for the health checker.
    let addedBackends: AsyncStream<Backend>
    /// Called after every change worth persisting (membership, drain, ready).
    private let onChange: @Sendable ([PersistedBackend], UInt64) -> Void

    init(
        group: any EventLoopGroup,
        configuration: ProxyConfiguration,
        metrics: ProxyMetrics,
        logger: Logger,
        onChange: @escaping @Sendable ([PersistedBackend], UInt64) -> Void = { _, _ in }
    ) {
        self.group = group
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.onChange = onChange
        (addedBackends, added) = AsyncStream.makeStream(of: Backend.self)
    }

    // MARK: Membership

    /// Adds a backend, checked by `health` (else what it was saved with, else the proxy's
    /// default). It takes traffic once health checks pass `rise` times, unless it is restored as
    /// `ready` (proxy restart), when the checks only confirm it.
    @discardableResult
    public func add(name: String, address: Endpoint, release: String? = nil, health: HealthCheck? = nil, restoredAs restored: PersistedBackend? = nil) throws -> BackendInfo {
        guard case .tcp(let host, let port) = address else {
            throw BatonError(.invalidArgument, "backend '\(name)': expected a host:port address, got \(address)")
        }
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) else {
            throw BatonError(.invalidArgument, "backend name '\(name)': expected letters, digits, '-', '_', '.' or ':'")
        }
        let release = release ?? restored?.release
        if let release, !VersionAffinity.isValidRelease(release) {
            throw BatonError(.invalidArgument, "backend '\(name)': release '\(release)': expected 1 to 64 letters, digits, '-', '_' or '.'")
        }
        let check = health ?? restored?.health ?? configuration.healthCheck
        try check.validate()
        let backend = Backend(name: name, host: host, port: port, release: release, healthCheck: check, group: group, configuration: configuration)
        let machine = BackendStateMachine(
            rise: check.rise,
            fall: check.fall,
            startHealthy: restored?.state == .enabled && restored?.ready == true,
            startDrained: restored?.state == .drained
        )
        let (info, released): (BackendInfo, [(EventLoopPromise<Backend>, Backend)]) = try state.withLockedValue { state in
            if state.entries[name] != nil {
                throw BatonError(.conflict, "backend '\(name)' already exists; remove it first or use another name")
            }
            if let other = state.entries.values.first(where: { $0.backend.host == host && $0.backend.port == port }) {
                throw BatonError(.conflict, "backend '\(other.backend.name)' already has address \(address)")
            }
            state.sequence += 1
            state.entries[name] = Entry(backend: backend, machine: machine, sequence: state.sequence)
            state.order.append(name)
            if machine.isRoutable { Self.routingChanged(&state, backend: backend, routable: true) }
            return (Self.info(state.entries[name]!), Self.releaseHolds(&state, affinity: configuration.affinity))
        }
        complete(released)
        metrics.backendState(name, info.state)
        logger.info("backend added", metadata: ["backend": "\(name)", "address": "\(address)", "state": "\(info.state)", "health": "GET \(check.path) every \(check.interval.shortDescription)"])
        added.yield(backend)
        persist()
        return info
    }

    public func remove(name: String) throws {
        let backend: Backend = try state.withLockedValue { state in
            guard var entry = state.entries[name] else { throw Self.notFound(name) }
            _ = entry.machine.remove()
            state.entries[name] = nil
            state.order.removeAll { $0 == name }
            Self.routingChanged(&state, backend: entry.backend, routable: false)
            return entry.backend
        }
        backend.closeIdleConnections()
        metrics.backendState(name, .removed)
        logger.info("backend removed", metadata: ["backend": "\(name)"])
        persist()
    }

    public func list() -> [BackendInfo] {
        state.withLockedValue { state in state.order.compactMap { state.entries[$0].map(Self.info) } }
    }

    /// `list()` with what each backend served.
    public func listWithStats() async -> [BackendInfo] {
        let entries = state.withLockedValue { state in state.order.compactMap { state.entries[$0] }.map { (Self.info($0), $0.backend) } }
        var result: [BackendInfo] = []
        for (info, backend) in entries {
            var info = info
            info.stats = await backend.stats()
            result.append(info)
        }
        return result
    }

    public func info(name: String) -> BackendInfo? {
        state.withLockedValue { state in state.entries[name].map(Self.info) }
    }

    func isMember(_ backend: Backend) -> Bool {
        state.withLockedValue { $0.entries[backend.name]?.backend === backend }
    }

    // MARK: Drain and ready

    /// Stops sending new requests to the backend, closes its idle connections and waits until
    /// its in-flight requests are done, or closes their connections at `timeout`.
    public func drain(name: String, timeout: Duration) async throws -> DrainResult {
        let start = ContinuousClock.now
        let backend = try transition(name) { _ = $0.machine.drain() }
        backend.setDraining(true)
        backend.closeIdleConnections()
        backend.endLongLivedExchanges(over: min(timeout / 2, configuration.tunnelCloseWindow))
        while backend.inFlight > 0, ContinuousClock.now - start < timeout {
            guard info(name: name)?.state == .draining else { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let cut = backend.inFlight
        if cut > 0 {
            logger.warning("drain timed out; closing in-flight connections", metadata: ["backend": "\(name)", "cut": "\(cut)"])
            await backend.closeAllConnections()
        }
        _ = try? transition(name) { _ = $0.machine.drainFinished() }
        let elapsed = ContinuousClock.now - start
        logger.info("backend drained", metadata: ["backend": "\(name)", "cut": "\(cut)", "elapsed": "\(elapsed.shortDescription)"])
        return DrainResult(name: name, cut: cut, elapsedMilliseconds: elapsed.milliseconds)
    }

    /// Puts a drained backend back into rotation (it must still pass health checks).
    public func markReady(name: String) throws -> BackendInfo {
        // Put back by a deploy (a rollback re-admits the old release): it counts as the newest.
        try state.withLockedValue { state in
            guard state.entries[name] != nil else { throw Self.notFound(name) }
            state.sequence += 1
            state.entries[name]?.sequence = state.sequence
            Self.findNewest(&state)
        }
        try transition(name) { _ = $0.machine.markReady() }.setDraining(false)
        return info(name: name) ?? BackendInfo(name: name, address: "", state: .removed, healthy: false, inFlight: 0)
    }

    // MARK: Health

    /// A check's outcome: nil passed, else why it failed (kept for the admin API, and logged
    /// when it takes the backend out or keeps it from coming in).
    func healthCheckResult(_ backend: Backend, failure: String?) {
        var newReason = false
        _ = try? transition(backend.name, expecting: backend, reason: failure) { entry in
            _ = entry.machine.healthCheck(passed: failure == nil)
            newReason = failure != nil && failure != entry.lastFailure
            entry.lastFailure = failure
        }
        // Once per new reason, not every interval: a backend that never passes says why.
        if newReason, let failure {
            logger.warning("health check failed", metadata: ["backend": "\(backend.name)", "reason": "\(failure)"])
        }
    }

    /// Passive health: a failed connect takes the backend out of rotation at once.
    func connectFailed(_ backend: Backend) {
        _ = try? transition(backend.name, expecting: backend, reason: "connect failed") { _ = $0.machine.connectFailed() }
    }

    // MARK: Request path

    /// Picks the ready backend with the fewest requests in flight, preferring one other than
    /// `excluding` (the one that just failed), and counts the request against it.
    /// With version affinity on, it keeps to the ready backends of the `pinned` release, else
    /// of the newest one, and takes any other only when none of those is left.
    func trySelect(excluding: Backend? = nil, pinned: String? = nil) -> Backend? {
        state.withLockedValue { state in Self.select(&state, excluding: excluding, pinned: pinned, affinity: configuration.affinity) }
    }

    /// A held request's place in the queue.
    struct HoldTicket: Sendable { fileprivate let id: UInt64 }

    /// Waits for a backend to become ready, up to `timeout`; the future fails with
    /// `HoldTimeout` when none does, and at once with `HoldQueueFull` when `maxHeld` requests
    /// already wait. The ticket (nil when not queued) lets the caller give up its place.
    func hold(on eventLoop: any EventLoop, timeout: Duration) -> (EventLoopFuture<Backend>, HoldTicket?) {
        let promise = eventLoop.makePromise(of: Backend.self)
        let limit = configuration.maxHeld
        let affinity = configuration.affinity
        let (id, backend, full): (UInt64?, Backend?, Bool) = state.withLockedValue { state in
            // Re-check under the lock: a backend may have become ready since trySelect.
            if let backend = Self.select(&state, excluding: nil, pinned: nil, affinity: affinity) { return (nil, backend, false) }
            if state.holds.count >= limit { return (nil, nil, true) }
            return (state.holds.enqueue(promise), nil, false)
        }
        if let backend {
            promise.succeed(backend)
        } else if full {
            promise.fail(HoldQueueFull())
        } else if let id {
            metrics.held()
            eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
                let waiter = state.withLockedValue { $0.holds.remove(id: id) }
                waiter?.fail(HoldTimeout())
            }
        }
        return (promise.futureResult, id.map(HoldTicket.init))
    }

    /// The held request's client went away: it leaves the queue now rather than at its timeout.
    func cancelHold(_ ticket: HoldTicket) {
        let waiter = state.withLockedValue { $0.holds.remove(id: ticket.id) }
        waiter?.fail(HoldCancelled())
    }

    /// Requests waiting for a backend right now.
    public var heldRequests: Int { state.withLockedValue { $0.holds.count } }

    // MARK: Internals

    private static func select(_ state: inout State, excluding: Backend?, pinned: String?, affinity: Bool) -> Backend? {
        let ready = state.ready
        guard !ready.isEmpty else { return nil }
        state.cursor &+= 1
        var best: Backend?
        if affinity, let release = pinned.flatMap({ pin in ready.contains { $0.release == pin } ? pin : nil }) ?? state.newest {
            best = leastLoaded(ready, cursor: state.cursor, excluding: excluding, strictly: true) { $0.release == release }
        }
        if best == nil {
            best = leastLoaded(ready, cursor: state.cursor, excluding: excluding, strictly: false) { _ in true }
        }
        best?.requestStarted()
        return best
    }

    /// The candidate with the fewest requests in flight, starting the scan at `cursor` so ties
    /// rotate. `excluding` is skipped unless it is the only ready backend and not `strictly`.
    private static func leastLoaded(_ ready: [Backend], cursor: Int, excluding: Backend?, strictly: Bool, where matches: (Backend) -> Bool) -> Backend? {
        var best: Backend?
        var bestLoad = Int.max
        for offset in 0..<ready.count {
            let candidate = ready[(cursor &+ offset) % ready.count]
            if candidate === excluding && (strictly || ready.count > 1) { continue }
            guard matches(candidate) else { continue }
            let load = candidate.inFlight
            if load < bestLoad {
                best = candidate
                bestLoad = load
            }
        }
        return best
    }

    /// Applies `change` to the named backend's state machine and carries out what follows.
    @discardableResult
    private func transition(
        _ name: String,
        persist shouldPersist: Bool = true,
        expecting expected: Backend? = nil,
        reason: String? = nil,
        _ change: (inout Entry) -> Void
    ) throws -> Backend {
        let (backend, before, after, released) = try state.withLockedValue { state in
            guard var entry = state.entries[name], expected == nil || entry.backend === expected else {
                throw Self.notFound(name)
            }
            let before = entry.machine
            change(&entry)
            state.entries[name] = entry
            if before.isRoutable != entry.machine.isRoutable {
                Self.routingChanged(&state, backend: entry.backend, routable: entry.machine.isRoutable)
            }
            return (entry.backend, before, entry.machine, Self.releaseHolds(&state, affinity: configuration.affinity))
        }
        complete(released)
        if before.state != after.state {
            metrics.backendState(name, after.state)
            var metadata: Logger.Metadata = ["backend": "\(name)", "was": "\(before.state)"]
            if let reason { metadata["reason"] = "\(reason)" }
            logger.info("backend \(after.state)", metadata: metadata)
        }
        if before.isRoutable && !after.isRoutable { backend.closeIdleConnections() }
        if shouldPersist && before.state != after.state { persist() }
        return backend
    }

    private static func routingChanged(_ state: inout State, backend: Backend, routable: Bool) {
        backend.setRoutable(routable)
        state.ready.removeAll { $0 === backend }
        if routable { state.ready.append(backend) }
        findNewest(&state)
    }

    private static func findNewest(_ state: inout State) {
        state.newest = state.ready
            .compactMap { ready in state.entries[ready.name].flatMap { entry in ready.release.map { ($0, entry.sequence) } } }
            .max { $0.1 < $1.1 }?.0
    }

    /// Picks a backend for every held request, in arrival order, while one is ready. Runs
    /// under the lock of the change that made a backend ready, so it cannot race a removal.
    private static func releaseHolds(_ state: inout State, affinity: Bool) -> [(EventLoopPromise<Backend>, Backend)] {
        var released: [(EventLoopPromise<Backend>, Backend)] = []
        while state.holds.count > 0, !state.ready.isEmpty, let promise = state.holds.dequeue() {
            if let backend = select(&state, excluding: nil, pinned: nil, affinity: affinity) { released.append((promise, backend)) }
        }
        return released
    }

    private func complete(_ released: [(EventLoopPromise<Backend>, Backend)]) {
        for (promise, backend) in released { promise.succeed(backend) }
    }

    /// The pool as `--state-file` saves it and a handover carries it.
    func snapshot() -> [PersistedBackend] {
        state.withLockedValue { Self.persisted($0) }
    }

    /// Hands the pool to `onChange` (the state file): on every change, and when a handover
    /// ends (the process that keeps the pool saves it).
    func persist() {
        let (snapshot, sequence) = state.withLockedValue { state in
            state.snapshots += 1
            return (Self.persisted(state), state.snapshots)
        }
        onChange(snapshot, sequence)
    }

    private static func persisted(_ state: State) -> [PersistedBackend] {
        state.order.compactMap { name -> PersistedBackend? in
            guard let entry = state.entries[name] else { return nil }
            let admin: PersistedBackend.AdminState =
                switch entry.machine.state {
                case .draining, .drained: .drained
                default: .enabled
                }
            return PersistedBackend(name: name, address: entry.backend.address, release: entry.backend.release, state: admin, ready: entry.machine.isHealthy, health: entry.backend.healthCheck)
        }
    }

    private static func info(_ entry: Entry) -> BackendInfo {
        BackendInfo(
            name: entry.backend.name,
            address: entry.backend.address,
            release: entry.backend.release,
            state: entry.machine.state,
            healthy: entry.machine.isHealthy,
            inFlight: entry.backend.inFlight,
            health: entry.backend.healthCheck,
            lastFailure: entry.lastFailure
        )
    }

    private static func notFound(_ name: String) -> BatonError {
        BatonError(.notFound, "no backend named '\(name)'")
    }
}

/// A held request waited `--max-hold` and no backend became ready.
struct HoldTimeout: Error {}
/// `--max-held` requests were already waiting.
struct HoldQueueFull: Error {}
/// The held request's client went away.
struct HoldCancelled: Error {}
