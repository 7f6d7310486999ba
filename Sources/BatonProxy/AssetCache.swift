import BatonCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Asset continuity (`--asset-prefix`, `--asset-manifest`): content-hashed assets of every
/// release the proxy has seen stay available after that release's last backend is gone, so a
/// page loaded from the old release still gets its scripts and styles mid-rollout.
///
/// When a release's first backend is ready, the proxy fetches the release's asset manifest from
/// it (any JSON: every string in it that is a path under the prefix, or a file name relative to
/// it, is an asset, which fits Vite's, webpack's and Rails' manifests) and then each asset, and
/// keeps them in memory up to `limit` bytes, oldest release dropped first. Requests for a kept
/// asset are answered from memory: a content-hashed name never changes its content.
public final class AssetCache: Sendable {
    /// One kept asset: what its response needs.
    struct Asset: Sendable {
        var body: ByteBuffer
        var contentType: String
        var cacheControl: String
        var etag: String?
        var release: String?
    }

    private struct State {
        var assets: [String: Asset] = [:]
        /// Paths in the order they were kept, for dropping the oldest first.
        var order: [String] = []
        var bytes = 0
        /// Releases (or, for backends that did not say theirs, backend names) already fetched.
        var fetched: Set<String> = []
    }

    public let prefix: String
    public let manifest: String
    public let limit: Int
    private let state = Mutex(State())
    private let logger: Logger

    public init(prefix: String, manifest: String, limit: Int, logger: Logger) {
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.manifest = manifest
        self.limit = limit
        self.logger = logger
    }

    /// The kept asset a request is for: a GET or HEAD under the prefix without a body.
    func lookup(_ head: HTTPRequestHead) -> Asset? {
        guard head.method == .GET || head.method == .HEAD, head.uri.hasPrefix(prefix),
              !head.headers.contains(name: "transfer-encoding"),
              head.headers.first(name: "content-length").map({ $0 == "0" }) ?? true
        else { return nil }
        let path = head.uri.firstIndex(of: "?").map { String(head.uri[..<$0]) } ?? head.uri
        return state.withLock { $0.assets[path] }
    }

    /// The response to a request `lookup` found an asset for: 304 when the client has it.
    static func response(_ asset: Asset, to head: HTTPRequestHead, exposeRelease: Bool) -> (HTTPResponseHead, ByteBuffer?) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        if let etag = asset.etag { headers.add(name: "etag", value: etag) }
        headers.add(name: "cache-control", value: asset.cacheControl)
        if exposeRelease, let release = asset.release { headers.add(name: "x-baton-release", value: release) }
        headers.add(name: "x-baton-asset", value: "kept")
        if let etag = asset.etag, head.headers["if-none-match"].contains(where: { $0 == etag || $0 == "*" }) {
            return (HTTPResponseHead(version: head.version, status: .notModified, headers: headers), nil)
        }
        headers.add(name: "content-type", value: asset.contentType)
        headers.add(name: "content-length", value: String(asset.body.readableBytes))
        return (HTTPResponseHead(version: head.version, status: .ok, headers: headers), head.method == .HEAD ? nil : asset.body)
    }

    /// A kept asset as it travels to the process that replaces this one.
    struct Kept: Codable, Sendable {
        var path: String
        var body: Data
        var contentType: String
        var cacheControl: String
        var etag: String?
        var release: String?
    }

    /// Everything kept, oldest first, and the releases fetched, for `baton proxy upgrade`.
    func exported() -> [Kept] {
        state.withLock { state in
            state.order.compactMap { path in
                state.assets[path].map { Kept(path: path, body: Data($0.body.readableBytesView), contentType: $0.contentType, cacheControl: $0.cacheControl, etag: $0.etag, release: $0.release) }
            }
        }
    }

    /// Takes over what the previous process kept. Its releases are not fetched again while they
    /// are up, since their assets are here.
    func restore(_ kept: [Kept]) {
        for asset in kept {
            _ = keep(Asset(body: ByteBuffer(bytes: asset.body), contentType: asset.contentType, cacheControl: asset.cacheControl, etag: asset.etag, release: asset.release), at: asset.path)
            if let release = asset.release { state.withLock { _ = $0.fetched.insert(release) } }
        }
    }

    /// Whether the asset at `path` is kept.
    public func isKept(_ path: String) -> Bool {
        state.withLock { $0.assets[path] != nil }
    }

    /// Twice a second, fetches the assets of each ready release not fetched yet, until cancelled.
    func run(pool: BackendPool) async {
        while !Task.isCancelled {
            for backend in pool.list() where backend.state == .ready {
                let key = backend.release ?? "backend \(backend.name)"
                guard state.withLock({ !$0.fetched.contains(key) }), let endpoint = try? Endpoint(parsing: backend.address) else { continue }
                do {
                    let kept = try await fetch(from: endpoint, release: backend.release)
                    state.withLock { _ = $0.fetched.insert(key) }
                    logger.info("assets kept", metadata: ["release": "\(backend.release ?? "-")", "backend": "\(backend.name)", "assets": "\(kept)"])
                } catch {
                    // Tried again next round: the backend may still be warming up.
                    logger.warning("could not fetch assets", metadata: ["backend": "\(backend.name)", "reason": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Fetches the manifest and every asset it names that is not kept yet; returns how many.
    func fetch(from endpoint: Endpoint, release: String?) async throws -> Int {
        let listing = try await HTTP1Client.send(HTTPRequest(.GET, manifest), to: endpoint, timeout: .seconds(10))
        guard listing.status == 200 else {
            throw BatonError(.unavailable, "GET \(manifest) answered \(listing.status)")
        }
        let paths: [String]
        do {
            paths = Self.assetPaths(in: try JSONSerialization.jsonObject(with: Data(listing.body.readableBytesView)), prefix: prefix)
        } catch {
            throw BatonError(.invalidArgument, "GET \(manifest): not JSON (\(error))")
        }
        var kept = 0
        for path in paths where state.withLock({ $0.assets[path] == nil }) {
            let response = try await HTTP1Client.send(HTTPRequest(.GET, path), to: endpoint, timeout: .seconds(10))
            guard response.status == 200 else { continue }
            let asset = Asset(
                body: response.body,
                contentType: response.headers.first(name: "content-type") ?? "application/octet-stream",
                cacheControl: response.headers.first(name: "cache-control") ?? "public, max-age=31536000, immutable",
                etag: response.headers.first(name: "etag"),
                release: release
            )
            if keep(asset, at: path) { kept += 1 }
        }
        return kept
    }

    /// Keeps `asset`, dropping the oldest kept ones to stay within the limit; one larger than
    /// the whole limit is not kept.
    func keep(_ asset: Asset, at path: String) -> Bool {
        let size = asset.body.readableBytes
        guard size <= limit else { return false }
        state.withLock { state in
            while state.bytes + size > limit, !state.order.isEmpty {
                let oldest = state.order.removeFirst()
                state.bytes -= state.assets.removeValue(forKey: oldest)?.body.readableBytes ?? 0
            }
            state.assets[path] = asset
            state.order.append(path)
            state.bytes += size
        }
        return true
    }

    /// Every string in the manifest that names an asset: an absolute path under the prefix, or
    /// a relative one (no scheme, no "..") taken as under it. Sorted, without repeats.
    static func assetPaths(in manifest: Any, prefix: String) -> [String] {
        var found: Set<String> = []
        func visit(_ value: Any) {
            switch value {
            case let text as String:
                if text.hasPrefix(prefix) {
                    found.insert(text)
                } else if !text.hasPrefix("/"), !text.contains(":"), !text.contains(".."), text.contains("."), !text.contains(" ") {
                    let trimmed = text.hasPrefix("./") ? String(text.dropFirst(2)) : text
                    let relative = trimmed.hasPrefix(prefix.dropFirst()) ? "/" + trimmed : prefix + trimmed
                    found.insert(relative)
                }
            case let array as [Any]:
                array.forEach(visit)
            case let object as [String: Any]:
                object.values.forEach(visit)
            default:
                break
            }
        }
        visit(manifest)
        return found.filter { !$0.contains("?") && !$0.contains("#") && $0 != prefix }.sorted()
    }
}
