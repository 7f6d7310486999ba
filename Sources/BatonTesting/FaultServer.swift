import BatonCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small app with sessions and writes that misbehaves a known number of times, to prove the
/// probe counts exactly what happened. Routes: `POST /login` (sets `session`), `GET /items`
/// (needs a session), `POST /items` (stores the body's token, 201), `GET /items/TOKEN`.
///
/// Faults, each spread out over the `GET /items` (or `POST /items`) requests, every `spacing`-th:
/// `errors` 503s, `resets` connections reset without an answer, `logouts` 401s that also end the
/// session, `droppedWrites` writes acknowledged but not stored, and one `stall` before answering.
public final class FaultServer: Sendable {
    public struct Faults: Sendable {
        public var errors = 0
        public var resets = 0
        public var logouts = 0
        public var droppedWrites = 0
        public var stall: Duration?
        public var spacing = 5

        public init(errors: Int = 0, resets: Int = 0, logouts: Int = 0, droppedWrites: Int = 0, stall: Duration? = nil, spacing: Int = 5) {
            self.errors = errors
            self.resets = resets
            self.logouts = logouts
            self.droppedWrites = droppedWrites
            self.stall = stall
            self.spacing = spacing
        }
    }

    private struct State {
        var faults: Faults
        var sessions: Set<String> = []
        var items: Set<String> = []
        var reads = 0
        var writes = 0
        var stalled = false
    }

    private enum Answer {
        case respond(HTTPResponseStatus, String, [(String, String)])
        case reset
        case stall(Duration, HTTPResponseStatus, String)
    }

    private let state: NIOLockedValueBox<State>
    private let server: NIOAsyncChannel<NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>, Never>
    private let task: NIOLockedValueBox<Task<Void, Never>?> = .init(nil)
    public let endpoint: Endpoint

    public static func start(_ faults: Faults) async throws -> FaultServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(NIOHTTPServerRequestAggregator(maxContentLength: 1 << 20))
                    // Closed on deinit when dropped (see TestBackend).
                    return try NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>(synchronouslyWrapping: channel)
                }
            }
        let instance = FaultServer(server: server, faults: faults)
        instance.task.withLockedValue { $0 = Task { await instance.accept() } }
        return instance
    }

    private init(server: NIOAsyncChannel<NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>, Never>, faults: Faults) {
        self.server = server
        self.state = NIOLockedValueBox(State(faults: faults))
        self.endpoint = .tcp(host: "127.0.0.1", port: server.channel.localAddress?.port ?? 0)
    }

    /// Faults not yet used up (all zero when every planned fault happened).
    public var remaining: Faults { state.withLockedValue { $0.faults } }

    /// Closes the listener; the accept loop then ends by itself after handing over what was
    /// accepted (see TestBackend.stopServing), cancelled only if it hangs.
    public func stop() async {
        try? await server.channel.close()
        let running = task.withLockedValue { $0 }
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(5))
            running?.cancel()
        }
        await running?.value
        watchdog.cancel()
    }

    private func accept() async {
        await withDiscardingTaskGroup { group in
            try? await server.executeThenClose { inbound in
                for try await connection in inbound { group.addTask { await self.serve(connection) } }
            }
            group.cancelAll()
        }
    }

    private func serve(_ connection: NIOAsyncChannel<NIOHTTPServerRequestFull, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            for try await request in inbound {
                switch answer(request) {
                case .reset:
                    try? await (connection.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0)).get()
                    try await connection.channel.close()
                    return
                case .stall(let delay, let status, let body):
                    try await Task.sleep(for: delay)
                    try await write(status, body, [], to: outbound)
                case .respond(let status, let body, let headers):
                    try await write(status, body, headers, to: outbound)
                }
            }
        }
    }

    private func write(_ status: HTTPResponseStatus, _ body: String, _ extra: [(String, String)], to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>) async throws {
        var headers = HTTPHeaders(extra)
        headers.add(name: "content-length", value: String(body.utf8.count))
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
        try await outbound.write(.end(nil))
    }

    private func answer(_ request: NIOHTTPServerRequestFull) -> Answer {
        let path = RequestTarget(request.head.uri).path
        let session = request.head.headers.first(name: "cookie")?.split(separator: ";")
            .map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("session=") }.map { String($0.dropFirst(8)) }
        let body = request.body.map { String(buffer: $0) } ?? ""
        return state.withLockedValue { state -> Answer in
            switch (request.head.method, path) {
            case (.POST, "/login"):
                let id = UUID().uuidString
                state.sessions.insert(id)
                return .respond(.ok, "welcome\n", [("set-cookie", "session=\(id); Path=/; HttpOnly")])
            case (.GET, "/items"):
                guard let session, state.sessions.contains(session) else { return .respond(.unauthorized, "log in\n", []) }
                state.reads += 1
                guard state.reads % state.faults.spacing == 0 else { return .respond(.ok, "\(state.items.count) items\n", []) }
                if let stall = state.faults.stall, !state.stalled {
                    state.stalled = true
                    return .stall(stall, .ok, "slow\n")
                }
                if state.faults.errors > 0 {
                    state.faults.errors -= 1
                    return .respond(.serviceUnavailable, "injected 503\n", [])
                }
                if state.faults.resets > 0 {
                    state.faults.resets -= 1
                    return .reset
                }
                if state.faults.logouts > 0 {
                    state.faults.logouts -= 1
                    state.sessions.remove(session)
                    return .respond(.unauthorized, "session expired\n", [])
                }
                return .respond(.ok, "\(state.items.count) items\n", [])
            case (.POST, "/items"):
                guard let session, state.sessions.contains(session) else { return .respond(.unauthorized, "log in\n", []) }
                state.writes += 1
                let token = body.components(separatedBy: "\"").dropFirst(3).first ?? body
                if state.writes % state.faults.spacing == 0 && state.faults.droppedWrites > 0 {
                    state.faults.droppedWrites -= 1
                } else {
                    state.items.insert(token)
                }
                return .respond(.created, "stored\n", [])
            case (.GET, _) where path.hasPrefix("/items/"):
                let token = String(path.dropFirst(7))
                return state.items.contains(token) ? .respond(.ok, token, []) : .respond(.notFound, "no such item\n", [])
            default:
                return .respond(.notFound, "no route\n", [])
            }
        }
    }
}
