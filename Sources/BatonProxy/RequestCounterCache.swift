import CoreMetrics

/// A client connection's own memo of the request metrics it used, so the request path skips
/// the metrics' shared locks once a (backend, status) pair has been seen on the connection.
struct RequestCounterCache {
    private var backend = ""
    private var status = -1
    private var counter: CoreMetrics.Counter?
    private var latencyBackend = ""
    private var latency: CoreMetrics.Timer?

    mutating func counter(backend: String, status: Int, metrics: ProxyMetrics) -> CoreMetrics.Counter {
        if let counter, status == self.status, backend == self.backend { return counter }
        let counter = metrics.requestCounter(backend: backend, status: status)
        self.backend = backend
        self.status = status
        self.counter = counter
        return counter
    }

    mutating func latency(backend: String, metrics: ProxyMetrics) -> CoreMetrics.Timer {
        if let latency, backend == latencyBackend { return latency }
        let latency = metrics.latencyTimer(backend: backend)
        latencyBackend = backend
        self.latency = latency
        return latency
    }
}
