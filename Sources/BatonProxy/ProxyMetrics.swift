import BatonCore
import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus

/// The proxy's metrics, kept in its own Prometheus registry (not the process-global metrics
/// system), so several proxies can live in one process, as they do in tests.
public final class ProxyMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let requestCounters = NIOLockedValueBox<[RequestKey: CoreMetrics.Counter]>([:])
    private let latencies = NIOLockedValueBox<[String: CoreMetrics.Timer]>([:])
    private let inFlightGauge: Meter
    private let retries: CoreMetrics.Counter
    private let holds: CoreMetrics.Counter
    private let holdTimeouts: CoreMetrics.Counter

    private struct RequestKey: Hashable {
        var backend: String
        var status: Int
    }

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        self.registry = registry
        self.factory = factory
        inFlightGauge = Meter(label: "baton_proxy_requests_in_flight", factory: factory)
        retries = CoreMetrics.Counter(label: "baton_proxy_retries_total", factory: factory)
        holds = CoreMetrics.Counter(label: "baton_proxy_held_requests_total", factory: factory)
        holdTimeouts = CoreMetrics.Counter(label: "baton_proxy_hold_timeouts_total", factory: factory)
        // Which binary is serving, as Prometheus' *_build_info convention has it.
        registry.makeGauge(name: "baton_proxy_build_info", labels: [("version", BatonVersion.number), ("commit", BatonVersion.commit ?? "")]).set(Int64(1))
    }

    /// The counter of finished requests for a backend and status. `backend` is empty when none
    /// served it (hold timeout, bad requests).
    func requestCounter(backend: String, status: Int) -> CoreMetrics.Counter {
        let key = RequestKey(backend: backend, status: status)
        return requestCounters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "baton_proxy_requests_total",
                dimensions: [("backend", backend), ("status", String(status))],
                factory: factory
            )
            counters[key] = counter
            return counter
        }
    }

    /// The latency histogram of one backend (the rollout reads a new node's p99 from it).
    func latencyTimer(backend: String) -> CoreMetrics.Timer {
        latencies.withLockedValue { timers in
            if let timer = timers[backend] { return timer }
            let timer = CoreMetrics.Timer(label: "baton_proxy_request_duration_seconds", dimensions: [("backend", backend)], factory: factory)
            timers[backend] = timer
            return timer
        }
    }

    func requestStarted() { inFlightGauge.increment(by: 1) }
    func requestEnded() { inFlightGauge.decrement(by: 1) }
    func retried() { retries.increment() }
    func held() { holds.increment() }
    func holdTimedOut() { holdTimeouts.increment() }

    func backendState(_ backend: String, _ state: BackendStateMachine.State) {
        for candidate in BackendStateMachine.State.allCases {
            CoreMetrics.Gauge(label: "baton_proxy_backend_state", dimensions: [("backend", backend), ("state", candidate.rawValue)], factory: factory)
                .record(candidate == state ? 1 : 0)
        }
    }

    /// The Prometheus text exposition.
    public func render() -> String {
        registry.emitToString()
    }
}
