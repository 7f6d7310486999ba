import Foundation
import NIOCore
import NIOPosix

public let DefaultHealthCheckPath = "/up"
public let DefaultHealthCheckInterval = Duration.milliseconds(500)
public let DefaultHealthCheckTimeout = Duration.seconds(2)
public let DefaultHealthRise = 2
public let DefaultHealthFall = 3

/// How an instance's health is checked: one definition for baton.yml, the deploy's warm-up,
/// every proxy the deploy admits the instance to, and `baton status`. A GET of `path` passes
/// with a 2xx or 3xx within `timeout`; `rise` passes in a row make it healthy, `fall` failures
/// in a row unhealthy.
public struct HealthCheck: Sendable, Equatable, Codable {
    public var path: String
    public var interval: Duration
    public var timeout: Duration
    public var rise: Int
    public var fall: Int

    public init(
        path: String = DefaultHealthCheckPath,
        interval: Duration = DefaultHealthCheckInterval,
        timeout: Duration = DefaultHealthCheckTimeout,
        rise: Int = DefaultHealthRise,
        fall: Int = DefaultHealthFall
    ) {
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self.rise = rise
        self.fall = fall
    }

    /// The one rule for a healthy answer.
    public static func passes(status: Int) -> Bool { (200..<400).contains(status) }

    /// Names the first field that is out of range, as `field: expected …, got …`; `name` spells
    /// the field as the input did (`health.rise` in baton.yml and the admin API, `--health-rise`
    /// on the command line).
    public func validate(naming name: (String) -> String = { "health.\($0)" }) throws {
        guard path.hasPrefix("/") else { throw BatonError(.invalidArgument, "\(name("path")): expected a path starting with '/', got '\(path)'") }
        guard rise >= 1 else { throw BatonError(.invalidArgument, "\(name("rise")): expected 1 or more, got \(rise)") }
        guard fall >= 1 else { throw BatonError(.invalidArgument, "\(name("fall")): expected 1 or more, got \(fall)") }
        guard interval > .zero else { throw BatonError(.invalidArgument, "\(name("interval")): expected more than 0, got \(interval.shortDescription)") }
        guard timeout > .zero else { throw BatonError(.invalidArgument, "\(name("timeout")): expected more than 0, got \(timeout.shortDescription)") }
    }

    /// One check of `endpoint`: nil when it passed, else why not, in words ("GET /up answered
    /// 503", "connection refused", "no answer within 2s").
    public func check(_ endpoint: Endpoint, userAgent: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async -> String? {
        let request = HTTPRequest(.GET, path, headers: ["connection": "close", "user-agent": userAgent])
        do {
            let response = try await withTimeout(timeout, operation: "GET \(path)") {
                try await HTTP1Client.withConnection(to: endpoint, connectTimeout: timeout, group: group) { try await $0.send(request) }
            }
            return Self.passes(status: response.status) ? nil : "GET \(path) answered \(response.status)"
        } catch let error as BatonError where error.code == .timeout {
            return "no answer to GET \(path) within \(timeout.shortDescription)"
        } catch let error as BatonError {
            return error.underlying.map { "\(error.message): \(Self.reason($0))" } ?? error.message
        } catch {
            return Self.reason(error)
        }
    }

    /// "connection refused" rather than NIO's whole error description.
    private static func reason(_ error: any Error) -> String {
        switch error {
        case let error as IOError: String(cString: strerror(error.errnoCode))
        case let error as NIOConnectionError: error.connectionErrors.first.map { reason($0.error) } ?? "cannot connect"
        case ChannelError.connectTimeout: "connect timed out"
        default: "\(error)"
        }
    }

    // Durations as "500ms", as in baton.yml and on the admin API.
    enum CodingKeys: String, CodingKey { case path, interval, timeout, rise, fall }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func duration(_ key: CodingKeys, _ fallback: Duration) throws -> Duration {
            guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return fallback }
            guard let value = Duration(parsing: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "health.\(key.rawValue): expected a duration such as 500ms or 2s, got '\(text)'")
            }
            return value
        }
        self.init(
            path: try container.decodeIfPresent(String.self, forKey: .path) ?? DefaultHealthCheckPath,
            interval: try duration(.interval, DefaultHealthCheckInterval),
            timeout: try duration(.timeout, DefaultHealthCheckTimeout),
            rise: try container.decodeIfPresent(Int.self, forKey: .rise) ?? DefaultHealthRise,
            fall: try container.decodeIfPresent(Int.self, forKey: .fall) ?? DefaultHealthFall
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(interval.shortDescription, forKey: .interval)
        try container.encode(timeout.shortDescription, forKey: .timeout)
        try container.encode(rise, forKey: .rise)
        try container.encode(fall, forKey: .fall)
    }
}
