import BatonCore
import Foundation
import NIOCore
import NIOHTTP1

/// The admin API's routes, independent of the socket it is served on:
///
///     GET    /backends                      list
///     POST   /backends                      add {"name","address","release","wait":true,"timeout":"30s",
///                                               "health":{"path","interval","timeout","rise","fall"}}
///     GET    /backends/NAME                 one
///     POST   /backends/NAME/drain?timeout=  drain, blocking until done or timed out
///     POST   /backends/NAME/ready           back into rotation
///     DELETE /backends/NAME                 remove
///     GET    /metrics                       Prometheus text
///     GET    /up                            the proxy itself
///     GET    /version                       {"version","commit"} of the running binary
///     GET    /tls                           the certificates served: names, expiry
///     POST   /tls/reload                    read the certificate files again (as SIGHUP)
///     POST   /upgrade                       {"binary"}: hand the listeners to a new process
///                                           (as SIGUSR2), answered once it serves; "binary"
///                                           over the Unix socket only
public struct AdminAPI: Sendable {
    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var contentType: String
        public var body: ByteBuffer
    }

    struct AddRequest: Decodable {
        var name: String
        var address: String
        /// The app release it runs, for version affinity.
        var release: String?
        var wait: Bool?
        var timeout: String?
        /// The backend's own health check; the proxy's default when absent.
        var health: HealthCheck?
    }

    let pool: BackendPool
    let metrics: ProxyMetrics
    let configuration: ProxyConfiguration
    var certificates: TLSCertificates?
    var upgrader: (any ProxyUpgrading)?

    /// Answers one call; `overTCP` when it came over the TCP listener rather than the Unix socket.
    func handle(method: HTTPMethod, uri: String, body: ByteBuffer?, overTCP: Bool = false) async -> Response {
        let target = RequestTarget(uri)
        let (path, query) = (target.path, target.query)
        let segments = path.split(separator: "/").map(String.init)
        do {
            switch (method, segments.count, segments.first) {
            case (.GET, 1, "up"):
                return .text("ok\n")
            case (.GET, 1, "version"):
                return try .json(["version": BatonVersion.number, "commit": BatonVersion.commit ?? ""])
            case (.GET, 1, "metrics"):
                return .text(metrics.render(), contentType: "text/plain; version=0.0.4")
            case (.GET, 1, "tls"):
                return try .json(["certificates": certificateSummary()])
            case (.POST, 2, "tls") where segments[1] == "reload":
                guard let certificates else { throw BatonError(.invalidArgument, "no --tls-listen: there are no certificates to reload") }
                try certificates.reload()
                return try .json(["certificates": certificateSummary()])
            case (.POST, 1, "upgrade"):
                guard let upgrader else { throw BatonError(.invalidArgument, "this proxy cannot be upgraded") }
                let binary = try upgradeBinary(body)
                // Naming the program to run is for whoever can reach the socket file (root or the
                // proxy's user); a TCP token only upgrades to the binary the proxy came from.
                if binary != nil && overTCP {
                    throw BatonError(.invalidArgument, "POST /upgrade: \"binary\" is accepted over the admin Unix socket only; over TCP the proxy restarts the binary it was started from")
                }
                return try .json(try await upgrader.upgrade(binary: binary))
            case (.GET, 1, "backends"):
                return try .json(["backends": await pool.listWithStats()])
            case (.POST, 1, "backends"):
                return try await add(body)
            case (.GET, 2, "backends"):
                guard let info = await pool.listWithStats().first(where: { $0.name == segments[1] }) else {
                    throw BatonError(.notFound, "no backend named '\(segments[1])'")
                }
                return try .json(info)
            case (.DELETE, 2, "backends"):
                try pool.remove(name: segments[1])
                return try .json(["removed": segments[1]])
            case (.POST, 3, "backends") where segments[2] == "drain":
                let timeout = try query["timeout"].map { try Self.duration($0, field: "timeout") } ?? configuration.drainTimeout
                return try .json(try await pool.drain(name: segments[1], timeout: timeout))
            case (.POST, 3, "backends") where segments[2] == "ready":
                return try .json(try pool.markReady(name: segments[1]))
            default:
                return .error(.notFound, "no admin route \(method) \(path)")
            }
        } catch let error as BatonError {
            return .error(Self.status(for: error.code), error.message)
        } catch {
            return .error(.internalServerError, "\(error)")
        }
    }

    private func certificateSummary() -> [AdminClient.Certificates.Certificate] {
        (certificates?.summary ?? []).map { .init(names: $0.names, notValidAfter: $0.notValidAfter.ISO8601Format()) }
    }

    /// The binary named by `POST /upgrade`'s body, if any: the running one otherwise.
    private func upgradeBinary(_ body: ByteBuffer?) throws -> String? {
        guard let body, body.readableBytes > 0 else { return nil }
        struct UpgradeRequest: Decodable { var binary: String? }
        do {
            return try JSONDecoder().decode(UpgradeRequest.self, from: Data(body.readableBytesView)).binary
        } catch {
            throw BatonError(.invalidArgument, "POST /upgrade: expected JSON {\"binary\": \"/usr/local/bin/baton\"} or no body (\(error))")
        }
    }

    private func add(_ body: ByteBuffer?) async throws -> Response {
        guard let body, body.readableBytes > 0 else {
            throw BatonError(.invalidArgument, "POST /backends: expected a JSON body {\"name\": \"web1\", \"address\": \"127.0.0.1:3000\"}")
        }
        let request: AddRequest
        do {
            request = try JSONDecoder().decode(AddRequest.self, from: Data(body.readableBytesView))
        } catch {
            throw BatonError(.invalidArgument, "POST /backends: expected JSON with string fields \"name\" and \"address\" (\(error))")
        }
        let address = try Endpoint(parsing: request.address)
        let timeout = try request.timeout.map { try Self.duration($0, field: "timeout") } ?? DefaultMaxHold
        let health = request.health ?? configuration.healthCheck
        var info = try pool.add(name: request.name, address: address, release: request.release, health: health)
        guard request.wait ?? true else { return try .json(info, status: .accepted) }
        let start = ContinuousClock.now
        while info.state != .ready {
            if ContinuousClock.now - start >= timeout {
                try? pool.remove(name: request.name)
                throw BatonError(
                    .timeout,
                    "backend '\(request.name)' at \(address) did not pass \(health.rise) health check(s) on \(health.path) within \(timeout.shortDescription)\(info.lastFailure.map { " (last: \($0))" } ?? ""); it was not added"
                )
            }
            try await Task.sleep(for: .milliseconds(10))
            guard let current = pool.info(name: request.name) else {
                throw BatonError(.conflict, "backend '\(request.name)' was removed while it was being added")
            }
            info = current
        }
        return try .json(info, status: .created)
    }

    static func duration(_ text: String, field: String) throws -> Duration {
        guard let duration = Duration(parsing: text) else {
            throw BatonError(.invalidArgument, "\(field)=\(text): expected a duration such as 500ms, 30s or 2m")
        }
        return duration
    }

    static func status(for code: BatonError.Code) -> HTTPResponseStatus {
        switch code {
        case .notFound: .notFound
        case .conflict: .conflict
        case .timeout: .gatewayTimeout
        case .invalidArgument, .invalidConfiguration: .badRequest
        default: .internalServerError
        }
    }
}

extension AdminAPI.Response {
    static func text(_ text: String, contentType: String = "text/plain; charset=utf-8") -> Self {
        .init(status: .ok, contentType: contentType, body: ByteBuffer(string: text))
    }

    static func json<Value: Encodable>(_ value: Value, status: HTTPResponseStatus = .ok) throws -> Self {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return .init(status: status, contentType: "application/json", body: ByteBuffer(bytes: data))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> Self {
        (try? .json(["error": message], status: status))
            ?? .init(status: status, contentType: "text/plain", body: ByteBuffer(string: message))
    }
}
