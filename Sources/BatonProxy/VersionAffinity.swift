import NIOHTTP1

/// Version affinity (`--affinity`): while releases are mixed, a client keeps to the release it
/// started on for as long as a backend of it is ready, and new clients go to the newest.
///
/// - A browser is pinned by the `baton-release` cookie the proxy sets on the first response.
/// - An API client or another service pins with the `X-Baton-Pin` request header; the proxy
///   passes the release that served a request on to the backend in the same header, so an app
///   that copies it onto its own calls keeps service-to-service traffic within one release.
/// - When the pinned release has no ready backend left, the request goes to the newest release,
///   the cookie moves with it, and the response carries `X-Baton-Release-Moved: FROM -> TO`:
///   the page should reload.
public enum VersionAffinity {
    public static let cookieName = "baton-release"
    public static let pinHeader = "x-baton-pin"
    public static let movedHeader = "x-baton-release-moved"

    /// Where a request's pin came from: a cookie is moved by the proxy, a header is the client's.
    enum Source: Equatable {
        case none
        case cookie
        case header
    }

    /// The release a request asks for, and how. A value that could not be a release name is
    /// ignored (the request is treated as unpinned) rather than refused.
    static func pin(of headers: HTTPHeaders) -> (release: String?, source: Source) {
        if let value = headers.first(name: pinHeader), isValidRelease(value) { return (value, .header) }
        for cookies in headers["cookie"] {
            for pair in cookies.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " || $0 == "\t" }
                guard trimmed.hasPrefix(cookieName + "=") else { continue }
                let value = String(trimmed.dropFirst(cookieName.count + 1)).trimmingTrailingSpace
                if isValidRelease(value) { return (value, .cookie) }
            }
        }
        return (nil, .none)
    }

    /// The headers a response gains when the release that served it is not the one pinned.
    static func responseHeaders(pinned: String?, source: Source, served: String?) -> [(String, String)] {
        guard let served, served != pinned else { return [] }
        var headers: [(String, String)] = []
        if source != .header {
            headers.append(("set-cookie", "\(cookieName)=\(served); Path=/; HttpOnly; SameSite=Lax"))
        }
        if let pinned { headers.append((movedHeader, "\(pinned) -> \(served)")) }
        return headers
    }

    /// Release names travel in cookies and headers: 1 to 64 of letters, digits, '-', '_', '.'.
    public static func isValidRelease(_ value: some StringProtocol) -> Bool {
        !value.isEmpty && value.utf8.count <= 64
            && value.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
    }
}

extension String {
    fileprivate var trimmingTrailingSpace: String {
        var result = Substring(self)
        while let last = result.last, last == " " || last == "\t" { result = result.dropLast() }
        return String(result)
    }
}
