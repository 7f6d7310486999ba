import BatonCore
import Foundation
import NIOConcurrencyHelpers
import Synchronization

/// WebSocket users beside a `RateLoad`: each keeps one socket open, sends a text message every
/// `interval` and waits for the backend to send it back (its acknowledgement).
///
/// A bare close frame with 1001 (going away) or 1012 (service restart) is how a draining proxy
/// ends a socket: the user replies, reconnects and re-sends the message that was not
/// acknowledged. Pings are answered (WebSocketClient). A
/// refused or failed handshake, a connection that ends without a close frame, any other close
/// code, a wrong echo, or an echo that does not come within `timeout` is a failure.
public final class WebSocketLoad: Sendable {
    public struct Result: Sendable {
        /// Sockets opened, reconnects included.
        public var sessions = 0
        /// Messages sent and acknowledged.
        public var acknowledged = 0
        /// Sockets the proxy ended politely (1001/1012) while the load ran.
        public var politeCloses = 0
        /// What really failed, as RateLoad samples (`request` is "WS <path>").
        public var failures: [RateLoad.Sample] = []
    }

    private let result = NIOLockedValueBox(Result())
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)
    private let stopping = Atomic<Bool>(false)
    private let start: ContinuousClock.Instant

    /// - Parameter start: the instant failures' `due` counts from (a RateLoad's `start`, so both
    ///   loads' samples share one time axis).
    public static func start(
        against endpoint: Endpoint,
        users: Int,
        path: String,
        interval: Duration = .milliseconds(500),
        timeout: Duration = .seconds(5),
        since start: ContinuousClock.Instant = .now
    ) -> WebSocketLoad {
        let load = WebSocketLoad(start: start)
        load.task.withLockedValue {
            $0 = Task {
                await withDiscardingTaskGroup { group in
                    for user in 0..<users {
                        group.addTask {
                            await load.run(user: user, endpoint: endpoint, path: path, interval: interval, timeout: timeout)
                        }
                    }
                }
            }
        }
        return load
    }

    private init(start: ContinuousClock.Instant) {
        self.start = start
    }

    private func run(user: Int, endpoint: Endpoint, path: String, interval: Duration, timeout: Duration) async {
        var sequence = 0
        // The message waiting for its acknowledgement, re-sent after a reconnect.
        var pending: String?
        while !stopping.load(ordering: .relaxed) {
            let client: WebSocketClient
            do {
                client = try await WebSocketClient.connect(to: endpoint, path: path, timeout: timeout)
            } catch {
                fail(path, "handshake: \(error)")
                try? await Task.sleep(for: interval)
                continue
            }
            update { $0.sessions += 1 }
            session: while true {
                if stopping.load(ordering: .relaxed) {
                    try? await client.sendClose(code: 1000)
                    if await client.next(timeout: timeout)?.closeCode == nil { fail(path, "no close frame answered ours") }
                    await client.close()
                    return
                }
                // A close frame may have come while this user slept: then the socket is over.
                if let early = await client.next(timeout: .zero) {
                    await ended(client, by: early, path: path)
                    break session
                }
                let message = pending ?? "user \(user) message \(sequence)"
                pending = message
                do {
                    try await client.send(message)
                } catch {
                    // The proxy's close frame and its FIN may both have come since the check.
                    if let frame = await client.next(timeout: .zero) {
                        await ended(client, by: frame, path: path)
                    } else {
                        fail(path, "send: \(error)")
                    }
                    break session
                }
                guard let frame = await client.next(timeout: timeout) else {
                    fail(path, client.connection.closedByPeer ? "closed without a close frame" : "no acknowledgement within \(timeout)")
                    break session
                }
                guard frame.opcode == 0x1, frame.text == message else {
                    await ended(client, by: frame, path: path, expecting: message)
                    break session
                }
                pending = nil
                sequence += 1
                update { $0.acknowledged += 1 }
                try? await Task.sleep(for: interval)
            }
            await client.close()
        }
    }

    /// A frame other than the awaited echo ended the session: politely (1001/1012, answered) or not.
    private func ended(_ client: WebSocketClient, by frame: WebSocketClient.Frame, path: String, expecting message: String? = nil) async {
        // The proxy's own close frames carry a bare code; a backend's 1001 with a reason (a ping
        // timeout, its shutdown) is not the drain's doing.
        if let code = frame.closeCode, code == 1001 || code == 1012, frame.payload.count == 2 {
            update { $0.politeCloses += 1 }
            try? await client.sendClose(code: code)
        } else if frame.opcode == 0x8 {
            fail(path, "closed with code \(frame.closeCode.map(String.init) ?? "none")")
        } else {
            fail(path, "expected \(message.map { "the echo of '\($0)'" } ?? "nothing"), got opcode \(frame.opcode) '\(frame.text.prefix(60))'")
        }
    }

    private func fail(_ path: String, _ reason: String) {
        let now = (ContinuousClock.now - start).seconds
        update { $0.failures.append(RateLoad.Sample(due: now, latency: 0, failed: true, status: nil, error: reason, request: "WS \(path)")) }
    }

    private func update(_ body: (inout Result) -> Void) {
        result.withLockedValue { body(&$0) }
    }

    /// Closes every socket (each user says goodbye with 1000 and waits for the answer).
    public func stop() async -> Result {
        stopping.store(true, ordering: .relaxed)
        let running = task.withLockedValue { $0 }
        await running?.value
        return result.withLockedValue { $0 }
    }
}
