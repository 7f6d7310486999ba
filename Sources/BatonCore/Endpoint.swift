/// Where something listens: a TCP host and port, or a Unix domain socket path.
public enum Endpoint: Hashable, Sendable, CustomStringConvertible, Codable {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// Parses "host:port", ":port" (loopback), "[::1]:port" or "unix:/path/to.sock".
    public init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else {
                throw BatonError(.invalidArgument, "endpoint '\(text)': expected unix:/path/to/socket")
            }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw BatonError(.invalidArgument, "endpoint '\(text)': expected host:port (e.g. 127.0.0.1:8080) or unix:/path")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self = .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    /// The value for a Host header.
    public var hostHeader: String {
        switch self {
        case .tcp: return description
        case .unix: return "localhost"
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
