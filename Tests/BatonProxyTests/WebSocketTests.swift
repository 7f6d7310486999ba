import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import Testing

extension LiveProxyTests {
    @Suite struct WebSocketTests {
        /// A proxy in front of WebSocket echo backends (health checks on their plain `/up`).
        func start(_ names: [String], _ configure: (inout ProxyConfiguration) -> Void = { _ in }) async throws -> (LiveProxy, [WebSocketBackend]) {
            var backends: [WebSocketBackend] = []
            for name in names { backends.append(try await WebSocketBackend.start(name: name)) }
            let proxy = try await LiveProxy.start(configure)
            for backend in backends {
                _ = try await proxy.admin.add(name: backend.name, address: backend.address, timeout: .seconds(10))
            }
            return (proxy, backends)
        }

        @Test func echoPassesThroughBothWays() async throws {
            let (proxy, backends) = try await start(["ws1"])
            let client = try await WebSocketClient.connect(to: proxy.endpoint)
            #expect(client.handshake.lowercased().contains("upgrade: websocket"))
            #expect(client.handshake.lowercased().contains("x-baton-backend: ws1"))
            for index in 0..<50 {
                let message = "message \(index) " + String(repeating: "x", count: index * 10)
                try await client.send(message)
                #expect(await client.next()?.text == message)
            }
            // It is in flight on its backend for as long as it is open, so a drain waits for it.
            #expect(try await proxy.admin.list().first?.inFlight == 1)
            try await client.sendClose(code: 1000)
            #expect(await client.next()?.closeCode == 1000)
            #expect(try await eventually { try await proxy.admin.list().first?.inFlight == 0 })
            // Plain requests still work on new connections.
            #expect(try await get("/", from: proxy.endpoint).bodyString == "hello from ws1\n")
            await client.close()
            try await proxy.shutdown()
            for backend in backends { await backend.stop() }
        }

        @Test func handshakeGoesOnAFreshBackendConnectionNotAPooledOne() async throws {
            // NIO's upgrader (like Hummingbird's) upgrades only a connection's first request, so
            // a handshake on a pooled keep-alive connection would be answered as a plain GET.
            // With one connection allowed, the idle one is closed to make room.
            let (proxy, backends) = try await start(["ws1"]) { $0.maxConnectionsPerBackend = 1 }
            for _ in 0..<3 { #expect(try await get("/", from: proxy.endpoint).bodyString == "hello from ws1\n") }
            let client = try await WebSocketClient.connect(to: proxy.endpoint)
            try await client.send("after plain requests")
            #expect(await client.next()?.text == "after plain requests")
            await client.close()
            // The pooled connection still serves plain requests.
            #expect(try await get("/", from: proxy.endpoint).status == 200)
            try await proxy.shutdown()
            for backend in backends { await backend.stop() }
        }

        @Test func backendPushBeforeTheClientSpeaksIsNotLost() async throws {
            // Bytes right behind the 101 sit in the decoder's buffer when the tunnel takes over.
            let (proxy, backends) = try await start(["ws1"])
            let client = try await WebSocketClient.connect(to: proxy.endpoint)
            try await client.send("a")
            try await client.send("b")
            try await client.send("c")
            #expect(await client.next()?.text == "a")
            #expect(await client.next()?.text == "b")
            #expect(await client.next()?.text == "c")
            await client.close()
            #expect(await eventually { backends[0].openSockets == 0 }, "closing the client must close the backend side")
            try await proxy.shutdown()
            for backend in backends { await backend.stop() }
        }

        @Test func drainClosesWebSocketsGraduallyAndClientsReconnectElsewhere() async throws {
            let (proxy, backends) = try await start(["ws1", "ws2"]) { $0.tunnelCloseWindow = .seconds(2) }
            let (ws1, ws2) = (backends[0], backends[1])
            // 200 clients, wherever least-outstanding puts them.
            var clients: [WebSocketClient] = []
            for _ in 0..<200 { clients.append(try await WebSocketClient.connect(to: proxy.endpoint)) }
            let onWs1 = clients.filter { $0.handshake.lowercased().contains("x-baton-backend: ws1") }
            #expect(onWs1.count > 50, "least-outstanding should spread them: \(onWs1.count) on ws1")
            for (index, client) in clients.enumerated() { try await client.send("before \(index)") }
            for client in clients { _ = await client.next() }

            let drainStart = ContinuousClock.now
            async let drained = proxy.admin.drain("ws1", timeout: .seconds(10))
            // Every client on ws1 gets a close frame (1001, going away); record when.
            let closes = await withTaskGroup(of: (UInt16?, Duration).self) { group in
                for client in onWs1 {
                    group.addTask {
                        let frame = await client.next(timeout: .seconds(8))
                        return (frame?.closeCode, ContinuousClock.now - drainStart)
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(closes.allSatisfy { $0.0 == 1001 }, "expected a close frame (1001) on every socket: \(closes.map(\.0))")
            let closeTimes = closes.map(\.1)
            let result = try await drained
            #expect(result.cut == 0, "the drain had to cut \(result.cut) tunnels")
            // Spread over the window, not all at once.
            let sorted = closeTimes.sorted()
            let spread = (sorted.last ?? .zero) - (sorted.first ?? .zero)
            #expect(spread > .milliseconds(1000), "closes came within \(spread)")
            // The backend heard a close for each of its sockets; none is left open.
            #expect(await eventually { ws1.openSockets == 0 })
            #expect(ws1.closeCodes.filter { $0 == 1001 }.count == onWs1.count)

            // They reconnect, to ws2 now, and nothing acknowledged before was lost.
            for (index, _) in onWs1.enumerated() {
                let again = try await WebSocketClient.connect(to: proxy.endpoint)
                #expect(again.handshake.lowercased().contains("x-baton-backend: ws2"))
                try await again.send("after \(index)")
                #expect(await again.next()?.text == "after \(index)")
                await again.close()
            }
            let acknowledged = Set(ws1.acknowledged + ws2.acknowledged)
            for index in 0..<200 { #expect(acknowledged.contains("before \(index)")) }
            for client in clients { await client.close() }
            try await proxy.shutdown()
            for backend in backends { await backend.stop() }
        }

        @Test func upgradeRefusedByTheBackendIsAnsweredThenClosed() async throws {
            // TestBackend knows no WebSocket: it answers the handshake with a plain 200.
            let web1 = try await TestBackend.start(name: "web1")
            let proxy = try await startProxy(backends: [web1])
            let connection = try await RawConnection.connect(to: proxy.endpoint)
            try await connection.send("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n\r\n")
            let text = await connection.waitForClose(timeout: .seconds(5))
            #expect(text.contains("\"upgrade\":\"websocket\""), "\(text)")
            #expect(text.lowercased().contains("connection: close"))
            #expect(connection.closedByPeer, "the connection was left open but deaf")
            await connection.close()
            try await proxy.shutdown()
            await web1.stop()
        }

        /// The body of a chunked response in `text` (after its head), and whether its last chunk came.
        static func dechunked(_ text: String) -> (body: String, complete: Bool) {
            guard let headEnd = text.range(of: "\r\n\r\n") else { return ("", false) }
            var rest = Substring(text[headEnd.upperBound...])
            var body = ""
            while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16) {
                let start = lineEnd.upperBound
                guard size > 0 else { return (body, true) }
                guard rest.utf8.count >= rest.distance(from: rest.startIndex, to: start) + size + 2 else { break }
                let end = rest.utf8.index(start, offsetBy: size)
                body += rest[start..<end]
                rest = rest[rest.utf8.index(end, offsetBy: 2)...]
            }
            return (body, false)
        }

        @Test func eventStreamEndsBetweenEventsWhenItsBackendDrains() async throws {
            let web1 = try await TestBackend.start(name: "web1")
            let web2 = try await TestBackend.start(name: "web2")
            let proxy = try await startProxy(backends: [web1, web2])
            let client = try await RawConnection.connect(to: proxy.endpoint)
            try await client.send("GET /events?count=100000&interval=20 HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await eventually { Self.dechunked(client.text).body.contains("data: event 5") })
            let name = client.text.lowercased().contains("x-baton-backend: web1") ? "web1" : "web2"
            let start = ContinuousClock.now
            let result = try await proxy.admin.drain(name, timeout: .seconds(10))
            #expect(result.cut == 0)
            #expect(ContinuousClock.now - start < .seconds(3), "the drain waited \(ContinuousClock.now - start) for the stream")
            // The response ended properly (last chunk), right after a whole event.
            #expect(await eventually { Self.dechunked(client.text).complete }, "\(client.text.suffix(200))")
            let events = Self.dechunked(client.text).body.components(separatedBy: "\n\n")
            #expect(events.last == "", "the stream did not end between events: \(events.suffix(2))")
            let whole = events.dropLast()
            #expect(whole.count > 5)
            for (index, event) in whole.enumerated() {
                #expect(event == "id: \(index)\ndata: event \(index)", "event \(index) was cut: \(event)")
            }
            // The client's connection stays usable for its next request.
            try await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await eventually { client.text.contains("hello from web") })
            await client.close()
            try await proxy.shutdown()
            await web1.stop()
            await web2.stop()
        }
    }
}
