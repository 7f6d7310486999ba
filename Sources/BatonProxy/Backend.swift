import BatonCore
import NIOCore
import Synchronization

/// One upstream server. Its routing state lives in `BackendPool` (under the pool's lock); what
/// the request path touches without a lock lives here: the in-flight count and the per-event-loop
/// connection pools.
public final class Backend: Sendable {
    public let name: String
    public let host: String
    public let port: Int
    /// The app release it runs (deploys name it), for version affinity; nil when not told.
    public let release: String?
    /// How this backend is checked: what the deploy that added it sent, else the proxy's default.
    public let healthCheck: HealthCheck

    /// Requests selected for this backend that have not finished yet.
    private let inFlightCount = Atomic<Int>(0)
    /// Mirrors `BackendStateMachine.isRoutable`, read when a connection is returned.
    private let routableFlag = Atomic<Bool>(false)
    /// Set while the backend drains, so exchanges opened meanwhile end too.
    private let drainingFlag = Atomic<Bool>(false)
    private let connectionPools: [ObjectIdentifier: BackendConnectionPool]
    /// Open WebSocket tunnels and event streams, each bound to its event loop, so a drain can
    /// end them.
    private let longLived = Mutex<[ObjectIdentifier: NIOLoopBound<any DrainableExchange>]>([:])

    init(name: String, host: String, port: Int, release: String?, healthCheck: HealthCheck, group: any EventLoopGroup, configuration: ProxyConfiguration) {
        self.name = name
        self.release = release
        self.host = host
        self.port = port
        self.healthCheck = healthCheck
        var pools: [ObjectIdentifier: BackendConnectionPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = BackendConnectionPool(eventLoop: loop, host: host, port: port, configuration: configuration)
        }
        self.connectionPools = pools
    }

    public var address: String { Endpoint.tcp(host: host, port: port).description }

    public var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    var isRoutable: Bool { routableFlag.load(ordering: .relaxed) }

    func setRoutable(_ routable: Bool) { routableFlag.store(routable, ordering: .relaxed) }

    var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }

    func setDraining(_ draining: Bool) { drainingFlag.store(draining, ordering: .relaxed) }

    func requestStarted() { inFlightCount.wrappingAdd(1, ordering: .relaxed) }

    func requestFinished() { inFlightCount.wrappingSubtract(1, ordering: .relaxed) }

    /// What it served, added up over every event loop.
    func stats() async -> BackendStats {
        var total = BackendStats()
        for pool in connectionPools.values {
            if let part = try? await pool.eventLoop.submit({ pool.stats }).get() { total.add(part) }
        }
        return total
    }

    /// The connection pool for the event loop the caller runs on.
    func connectionPool(for eventLoop: any EventLoop) -> BackendConnectionPool {
        guard let pool = connectionPools[ObjectIdentifier(eventLoop)] else {
            preconditionFailure("event loop \(eventLoop) is not in the proxy's group")
        }
        return pool
    }

    /// Registers a tunnel or event stream. One that opens while the backend drains (its
    /// request was sent before the drain began) is asked to end at once, or the drain would wait
    /// for it until its timeout.
    func exchangeOpened(_ exchange: any DrainableExchange, on eventLoop: any EventLoop) {
        longLived.withLock { $0[ObjectIdentifier(exchange)] = NIOLoopBound(exchange, eventLoop: eventLoop) }
        if isDraining {
            let bound = NIOLoopBound(exchange, eventLoop: eventLoop)
            eventLoop.execute { bound.value.endGracefully() }
        }
    }

    func exchangeClosed(_ exchange: any DrainableExchange) {
        _ = longLived.withLock { $0.removeValue(forKey: ObjectIdentifier(exchange)) }
    }

    /// Asks every open tunnel and event stream to end, one after another over `window`, so their
    /// clients reconnect to other backends gradually rather than all at once.
    func endLongLivedExchanges(over window: Duration) {
        let open = longLived.withLock { Array($0.values) }
        for (index, exchange) in open.enumerated() {
            let delay = TimeAmount.nanoseconds(Int64(Double(TimeAmount(window).nanoseconds) * Double(index) / Double(open.count)))
            exchange.eventLoop.scheduleTask(in: delay) { exchange.value.endGracefully() }
        }
    }

    /// Closes pooled idle connections (drain, remove).
    func closeIdleConnections() {
        for pool in connectionPools.values { pool.eventLoop.execute { pool.closeIdle() } }
    }

    /// Closes every connection, in flight or idle; returns once all are closed (drain timeout).
    func closeAllConnections() async {
        await withTaskGroup(of: Void.self) { group in
            for pool in connectionPools.values {
                group.addTask { try? await pool.eventLoop.submit { pool.closeAll() }.get() }
            }
        }
    }
}
