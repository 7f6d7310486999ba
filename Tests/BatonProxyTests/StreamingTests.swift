import BatonCore
import BatonProxy
import BatonTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

extension LiveProxyTests {
    @Suite struct StreamingTests {
        static let gibibyte = 1 << 30

        /// Samples this process's resident memory every 50 ms while `body` runs; returns the peak
        /// growth over the starting value. Proxy, backend and client all live in this process,
        /// so anything that held the body in memory would show here.
        func peakMemoryGrowth(during body: () async throws -> Void) async rethrows -> Int {
            let baseline = ProcessMemory.residentBytes()
            let peak = Atomic<Int>(baseline)
            let sampler = Task {
                while !Task.isCancelled {
                    let now = ProcessMemory.residentBytes()
                    if now > peak.load(ordering: .relaxed) { peak.store(now, ordering: .relaxed) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            try await body()
            sampler.cancel()
            await sampler.value
            return peak.load(ordering: .relaxed) - baseline
        }

        @Test func gibibyteUploadAndDownloadStreamInBoundedMemory() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let limit = 256 << 20

            let uploadGrowth = try await peakMemoryGrowth {
                let response = try await HTTP1Client.withConnection(to: proxy.endpoint) { connection in
                    try await connection.send(
                        HTTPRequest(.POST, "/upload", headers: ["transfer-encoding": "chunked"]),
                        bodyWriter: { writer in
                            let chunk = ByteBuffer(repeating: 0x61, count: 256 * 1024)
                            for _ in 0..<(Self.gibibyte / chunk.readableBytes) { try await writer.write(.body(.byteBuffer(chunk))) }
                        }
                    )
                }
                #expect(response.status == 200)
                #expect(response.bodyString == "received \(Self.gibibyte)\n")
            }
            #expect(uploadGrowth < limit, "upload grew memory by \(uploadGrowth >> 20) MiB")

            let downloadGrowth = try await peakMemoryGrowth {
                var received = 0
                let (status, _) = try await HTTP1Client.withConnection(to: proxy.endpoint) { connection in
                    try await connection.stream(HTTPRequest(.GET, "/download?bytes=\(Self.gibibyte)")) { received += $0.readableBytes }
                }
                #expect(status == 200)
                #expect(received == Self.gibibyte)
            }
            #expect(downloadGrowth < limit, "download grew memory by \(downloadGrowth >> 20) MiB")
            try await proxy.shutdown()
            await web1.stop()
        }

        @Test func headersAreRewrittenForTheBackendAndTheClient() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let response = try await get(
                "/echo",
                from: proxy.endpoint,
                headers: [
                    "host": "app.example", "connection": "keep-alive, x-secret", "x-secret": "hop", "keep-alive": "timeout=5",
                    "x-forwarded-for": "10.1.2.3", "x-request-id": "req-42", "upgrade": "websocket",
                ]
            )
            let echoed = response.bodyString
            #expect(response[header: "x-baton-backend"] == "web1")
            #expect(response[header: "x-request-id"] == "req-42")
            #expect(echoed.contains(#""x-forwarded-for":"10.1.2.3, 127.0.0.1""#))
            #expect(echoed.contains(#""x-forwarded-host":"app.example""#))
            #expect(echoed.contains(#""x-forwarded-proto":"http""#))
            #expect(echoed.contains(#""x-request-id":"req-42""#))
            #expect(!echoed.contains("x-secret"))
            #expect(!echoed.contains("keep-alive"))
            #expect(!echoed.contains("websocket"))

            let generated = try await get("/", from: proxy.endpoint)
            #expect(generated[header: "x-request-id"]?.count == 16)
            try await proxy.shutdown()
            await web1.stop()
        }
    }
}
