import Foundation

/// What the probe saw at the user-interface level: each virtual user's page loads (an HTML
/// response) and the release of every request the page made afterwards. A follow-up served by
/// another release, without the proxy saying the page's release is gone, is a mismatch: the
/// page would get a script, a JSON shape or an asset it does not know.
public struct UILevel: Codable, Sendable, Equatable {
    public var pageLoads = 0
    public var pageLoadsByRelease: [String: Int] = [:]
    /// Requests made by a page after it loaded.
    public var followUps = 0
    /// Follow-ups served by another release than the page's.
    public var mismatches = 0
    /// Responses saying the page's release has no server left (X-Baton-Release-Moved): the
    /// page is told to reload, and the probe reloads it.
    public var moved = 0
    /// Assets the pages referenced (scripts, styles), and those that did not load.
    public var assetLoads = 0
    public var assetsMissing = 0
    /// The first few mismatches and missing assets, as sentences.
    public var examples: [String] = []

    public init() {}

    public var summary: String {
        let byRelease = pageLoadsByRelease.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        return "\(pageLoads) page loads\(byRelease.isEmpty ? "" : " (\(byRelease))") · \(followUps) follow-up requests, \(mismatches) served by another release"
            + " · \(moved) told to reload · \(assetLoads) assets, \(assetsMissing) missing"
    }

    mutating func pageLoaded(release: String?) {
        pageLoads += 1
        pageLoadsByRelease[release ?? "unknown", default: 0] += 1
    }

    mutating func followUp(page: String, served: String, request: String, at: Double) {
        followUps += 1
        guard served != page else { return }
        mismatches += 1
        note(String(format: "%.1f s: a page of %@ had %@ served by %@", at, page, request, served))
    }

    mutating func assetLoaded(_ path: String, status: Int, page: String?, at: Double) {
        assetLoads += 1
        guard status != 200 else { return }
        assetsMissing += 1
        note(String(format: "%.1f s: a page of %@ could not load %@ (%@)", at, page ?? "an unknown release", path, status == 0 ? "no response" : String(status)))
    }

    private mutating func note(_ example: String) {
        if examples.count < 20 { examples.append(example) }
    }
}
