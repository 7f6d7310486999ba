import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

/// Tests against a real proxy on 127.0.0.1 with real backends. Serialized: they measure what
/// happens under load, and two at once on two cores would only test the scheduler.
@Suite(.serialized) struct LiveProxyTests {}

/// A proxy with the given test backends added and ready.
func startProxy(
    backends: [TestBackend],
    directory: String? = nil,
    _ configure: (inout ProxyConfiguration) -> Void = { _ in }
) async throws -> LiveProxy {
    let proxy = try await LiveProxy.start(directory: directory, configure)
    for backend in backends {
        _ = try await proxy.admin.add(name: backend.name, address: backend.address, timeout: .seconds(10))
    }
    return proxy
}

func get(_ path: String, from endpoint: Endpoint, headers: HTTPHeaders = [:]) async throws -> HTTPResponse {
    try await HTTP1Client.send(HTTPRequest(.GET, path, headers: headers), to: endpoint, timeout: .seconds(30))
}

/// A mixed workload: reads, slow reads (so there is always something in flight) and writes.
let mixedRequests: @Sendable (Int, Int) -> HTTPRequest = { worker, index in
    switch index % 4 {
    case 0: HTTPRequest(.POST, "/upload", body: "write \(worker)-\(index)")
    case 1: HTTPRequest(.GET, "/?sleep=20")
    default: HTTPRequest(.GET, "/item/\(index)")
    }
}
