import BatonCore
@testable import BatonProxy
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// What the asset cache reads from a manifest and answers; the rollout through real app
/// processes is in TranslateAppTests.
@Suite struct AssetCacheTests {
    @Test func readsAssetPathsFromViteWebpackAndPlainManifests() throws {
        let vite = #"{"index.html":{"file":"assets/index-4f2a.js","src":"index.html","css":["assets/index-9c1b.css"],"assets":["assets/logo-77aa.svg"],"isEntry":true}}"#
        let webpack = #"{"main.js":"/assets/main.3e1f.js","main.css":"/assets/main.aa01.css","chunk":"https://cdn.example.com/x.js"}"#
        let plain = #"["app.5d1e.js", "../etc/passwd", "./fonts/a.woff2", "has space.js"]"#
        func paths(_ json: String) throws -> [String] {
            AssetCache.assetPaths(in: try JSONSerialization.jsonObject(with: Data(json.utf8)), prefix: "/assets/")
        }
        #expect(try paths(vite) == ["/assets/index-4f2a.js", "/assets/index-9c1b.css", "/assets/index.html", "/assets/logo-77aa.svg"])
        #expect(try paths(webpack) == ["/assets/main.3e1f.js", "/assets/main.aa01.css"])
        #expect(try paths(plain) == ["/assets/app.5d1e.js", "/assets/fonts/a.woff2"])
    }

    @Test func answersConditionalAndHeadRequestsAndOnlyBodilessOnes() {
        let asset = AssetCache.Asset(body: ByteBuffer(string: "x();"), contentType: "text/javascript", cacheControl: "public, max-age=31536000, immutable", etag: #""abc""#, release: "5.3")
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/assets/app.js")
        let (ok, body) = AssetCache.response(asset, to: head, exposeRelease: true)
        #expect(ok.status == .ok && body?.readableBytes == 4)
        #expect(ok.headers.first(name: "content-length") == "4" && ok.headers.first(name: "x-baton-release") == "5.3")
        head.headers.add(name: "if-none-match", value: #""abc""#)
        let (notModified, none) = AssetCache.response(asset, to: head, exposeRelease: false)
        #expect(notModified.status == .notModified && none == nil)
        #expect(notModified.headers.first(name: "x-baton-release") == nil)
        let (headOnly, noBody) = AssetCache.response(asset, to: HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/assets/app.js"), exposeRelease: true)
        #expect(headOnly.status == .ok && noBody == nil && headOnly.headers.first(name: "content-length") == "4")

        let cache = AssetCache(prefix: "/assets", manifest: "/assets/manifest.json", limit: 10, logger: Logger(label: "test"))
        #expect(cache.prefix == "/assets/")
        #expect(cache.keep(asset, at: "/assets/app.js"))
        #expect(cache.lookup(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/assets/app.js?v=2")) != nil)
        #expect(cache.lookup(HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/assets/app.js")) != nil)
        for (method, headers) in [(HTTPMethod.POST, HTTPHeaders()), (.GET, ["content-length": "3"]), (.GET, ["transfer-encoding": "chunked"])] {
            #expect(cache.lookup(HTTPRequestHead(version: .http1_1, method: method, uri: "/assets/app.js", headers: headers)) == nil)
        }
        // Over the limit the oldest go first; one bigger than the whole limit is not kept.
        #expect(cache.keep(asset, at: "/assets/b.js"))
        #expect(cache.keep(asset, at: "/assets/c.js"))
        #expect(cache.lookup(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/assets/app.js")) == nil)
        #expect(cache.lookup(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/assets/c.js")) != nil)
        var big = asset
        big.body = ByteBuffer(string: String(repeating: "x", count: 11))
        #expect(!cache.keep(big, at: "/assets/big.js"))
    }
}
