import BatonCore
import Foundation
import NIOCore
import NIOHTTP1

/// Talks to a running proxy's admin API; used by `baton proxy backends …`, the rollout and tests.
public struct AdminClient: Sendable {
    public let endpoint: Endpoint
    public let token: String?
    public let timeout: Duration

    public init(endpoint: Endpoint, token: String? = nil, timeout: Duration = .seconds(120)) {
        self.endpoint = endpoint
        self.token = token
        self.timeout = timeout
    }

    public func list() async throws -> [BackendInfo] {
        struct List: Decodable { var backends: [BackendInfo] }
        return try await call(.GET, "/backends", as: List.self).backends
    }

    public func backend(_ name: String) async throws -> BackendInfo {
        try await call(.GET, "/backends/\(name)", as: BackendInfo.self)
    }

    /// Adds a backend checked by `health` (the proxy's default when nil); with `wait`, returns
    /// once it passed its checks.
    public func add(name: String, address: String, release: String? = nil, health: HealthCheck? = nil, wait: Bool = true, timeout: Duration = DefaultMaxHold) async throws -> BackendInfo {
        struct Body: Encodable {
            var name: String
            var address: String
            var release: String?
            var wait: Bool
            var timeout: String
            var health: HealthCheck?
        }
        let body = try JSONEncoder().encode(Body(name: name, address: address, release: release, wait: wait, timeout: timeout.shortDescription, health: health))
        return try await call(.POST, "/backends", body: ByteBuffer(bytes: body), as: BackendInfo.self)
    }

    public func drain(_ name: String, timeout: Duration = DefaultDrainTimeout) async throws -> DrainResult {
        try await call(.POST, "/backends/\(name)/drain?timeout=\(timeout.shortDescription)", as: DrainResult.self)
    }

    public func markReady(_ name: String) async throws -> BackendInfo {
        try await call(.POST, "/backends/\(name)/ready", as: BackendInfo.self)
    }

    public func remove(_ name: String) async throws {
        struct Removed: Decodable { var removed: String }
        _ = try await call(.DELETE, "/backends/\(name)", as: Removed.self)
    }

    /// The TLS certificates in use, after `reload` reads their files again.
    public struct Certificates: Codable, Sendable {
        public struct Certificate: Codable, Sendable {
            public var names: [String]
            public var notValidAfter: String
        }
        public var certificates: [Certificate]
    }

    public func certificates(reload: Bool) async throws -> Certificates {
        try await call(reload ? .POST : .GET, reload ? "/tls/reload" : "/tls", as: Certificates.self)
    }

    /// Starts `binary` (the running one when nil) in the proxy's place; returns once it serves.
    public func upgrade(binary: String? = nil) async throws -> UpgradeResult {
        let body = try binary.map { try JSONEncoder().encode(["binary": $0]) }
        return try await call(.POST, "/upgrade", body: body.map { ByteBuffer(bytes: $0) }, as: UpgradeResult.self)
    }

    public func metrics() async throws -> String {
        try await raw(.GET, "/metrics").bodyString
    }

    public func raw(_ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil) async throws -> HTTPResponse {
        var headers = HTTPHeaders()
        if let token { headers.add(name: "authorization", value: "Bearer \(token)") }
        if body != nil { headers.add(name: "content-type", value: "application/json") }
        do {
            return try await HTTP1Client.send(HTTPRequest(method, path, headers: headers, body: body), to: endpoint, timeout: timeout)
        } catch let error as BatonError where error.code == .unavailable {
            throw BatonError(.unavailable, "cannot reach the proxy's admin API at \(endpoint): is `baton proxy` running?", underlying: error.underlying)
        }
    }

    private func call<Result: Decodable>(_ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, as type: Result.Type) async throws -> Result {
        let response = try await raw(method, path, body: body)
        let data = Data(response.body.readableBytesView)
        guard (200..<300).contains(response.status) else {
            let message = (try? JSONDecoder().decode([String: String].self, from: data))?["error"] ?? response.bodyString
            throw BatonError(Self.code(for: response.status), message)
        }
        do {
            return try JSONDecoder().decode(Result.self, from: data)
        } catch {
            throw BatonError(.protocolError, "\(method) \(path): unexpected answer from the admin API: \(response.bodyString)")
        }
    }

    private static func code(for status: Int) -> BatonError.Code {
        switch status {
        case 404: .notFound
        case 409: .conflict
        case 504: .timeout
        case 400: .invalidArgument
        default: .unavailable
        }
    }
}
