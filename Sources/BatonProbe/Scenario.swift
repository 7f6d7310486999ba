import BatonCore
import Foundation
import NIOHTTP1

/// What synthetic users do: log in, then a weighted mix of requests; writes carry a unique token
/// that is read back at the end. Any app can be described in YAML; TranslateApp has a built-in one.
public struct Scenario: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var method: HTTPMethod
        /// May contain {user}, {token} and {n} (a number from 1 to 5).
        public var path: String
        public var body: String?
        public var weight: Int
        /// For a write: the path that must show the token afterwards (with {token}).
        public var readBack: String?

        public init(method: HTTPMethod, path: String, body: String?, weight: Int, readBack: String?) {
            self.method = method
            self.path = path
            self.body = body
            self.weight = weight
            self.readBack = readBack
        }
    }

    public var baseURL: Endpoint
    public var login: Step?
    /// Statuses that mean "you are not logged in" for a user who was.
    public var loggedOutStatuses: [Int]
    /// A redirect whose Location contains this also means logged out.
    public var loggedOutLocation: String?
    public var steps: [Step]
    /// The response header that names the release that answered (for requests by release).
    public var releaseHeader: String

    public static let defaultReleaseHeader = "X-Baton-Release"

    public init(
        baseURL: Endpoint, login: Step?, loggedOutStatuses: [Int] = [401], loggedOutLocation: String? = "/login", steps: [Step],
        releaseHeader: String = Scenario.defaultReleaseHeader
    ) {
        self.baseURL = baseURL
        self.login = login
        self.loggedOutStatuses = loggedOutStatuses
        self.loggedOutLocation = loggedOutLocation
        self.steps = steps
        self.releaseHeader = releaseHeader
    }

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.invalidConfiguration, "\(path): cannot read the scenario file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Scenario {
        let root = try YAMLReader.root(text: text, file: file)
        try root.allowKeys(["base_url", "login", "logged_out", "requests", "release_header"])
        let base = try root.requiredString("base_url", example: "http://127.0.0.1:8080")
        guard let baseURL = try? Endpoint(parsing: base.replacingOccurrences(of: "http://", with: "")) else {
            throw root.error("base_url", "expected http://HOST:PORT, got '\(base)'")
        }
        func step(_ reader: YAMLReader, write: Bool) throws -> Step {
            try reader.allowKeys(["method", "path", "body", "weight", "read_back"])
            let method = HTTPMethod(rawValue: (try reader.string("method") ?? "GET").uppercased())
            if case .RAW(let raw) = method { throw reader.error("method", "unknown HTTP method '\(raw)'") }
            let path = try reader.requiredString("path", example: "/api/items")
            guard path.hasPrefix("/") else { throw reader.error("path", "expected a path starting with '/', got '\(path)'") }
            let readBack = try reader.string("read_back")
            if let readBack, !readBack.contains("{token}") { throw reader.error("read_back", "must contain {token}") }
            let body = try reader.string("body")
            if readBack != nil, !(path.contains("{token}") || body?.contains("{token}") == true) {
                throw reader.error(nil, "a write with read_back must send {token} in its path or body")
            }
            return Step(method: method, path: path, body: body, weight: try reader.int("weight", min: 1) ?? 1, readBack: readBack)
        }
        let login = try root.child("login").map { try step($0, write: false) }
        let loggedOut = try root.child("logged_out")
        try loggedOut?.allowKeys(["status", "location"])
        var statuses = [401]
        if let reader = loggedOut, let list = try reader.list("status") {
            statuses = try list.map { item in
                guard let text = item.scalar, let value = Int(text) else {
                    throw item.error(nil, "expected a status code")
                }
                return value
            }
        }
        guard let requests = try root.list("requests"), !requests.isEmpty else {
            throw root.error(nil, "missing 'requests': a list of {method, path, weight}")
        }
        let releaseHeader = try root.string("release_header") ?? defaultReleaseHeader
        guard !releaseHeader.isEmpty, releaseHeader.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: ":") }) else {
            throw root.error("release_header", "expected a header name such as X-App-Version, got '\(releaseHeader)'")
        }
        return Scenario(
            baseURL: baseURL, login: login, loggedOutStatuses: statuses,
            loggedOutLocation: try loggedOut?.string("location") ?? "/login",
            steps: try requests.map { try step($0, write: true) },
            releaseHeader: releaseHeader
        )
    }

    /// TranslateApp's users: read the project list, open a project, save a translation.
    public static func translate(baseURL: Endpoint) -> Scenario {
        Scenario(
            baseURL: baseURL,
            login: Step(method: .POST, path: "/login", body: #"{"user":"{user}","password":"demo"}"#, weight: 1, readBack: nil),
            steps: [
                Step(method: .GET, path: "/api/projects", body: nil, weight: 4, readBack: nil),
                Step(method: .GET, path: "/api/projects/1/segments", body: nil, weight: 3, readBack: nil),
                Step(method: .GET, path: "/", body: nil, weight: 1, readBack: nil),
                Step(method: .POST, path: "/api/notes", body: #"{"text":"{token}"}"#, weight: 2, readBack: "/api/notes/{token}"),
            ]
        )
    }
}
