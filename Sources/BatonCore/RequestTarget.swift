import Foundation

/// The path and query of an HTTP request target ("/backends/web1/drain?timeout=30s").
public struct RequestTarget: Sendable, Equatable {
    public var path: String
    /// Query parameters, percent-decoded; a repeated name keeps its last value.
    public var query: [String: String]

    public init(_ uri: String) {
        guard let mark = uri.firstIndex(of: "?") else {
            self.path = uri
            self.query = [:]
            return
        }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            // Empty sides are kept ("?=", "?a=", "?=b"), so every pair has a name, maybe "".
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                .map { String($0).removingPercentEncoding ?? String($0) }
            query[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        self.path = String(uri[..<mark])
        self.query = query
    }
}
