import CoreMetrics

/// A client connection's own memo of the request counters it used, so the request path skips
/// the metrics' shared lock once a (backend, status) pair has been seen on the connection.
struct RequestCounterCache {
    private var backend = ""
    private var status = -1
    private var last: CoreMetrics.Counter?

    mutating func counter(backend: String, status: Int, metrics: ProxyMetrics) -> CoreMetrics.Counter {
        if let last, status == self.status, backend == self.backend { return last }
        let counter = metrics.requestCounter(backend: backend, status: status)
        self.backend = backend
        self.status = status
        last = counter
        return counter
    }
}
