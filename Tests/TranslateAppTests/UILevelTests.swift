import BatonCore
import BatonProbe
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension TranslateAppTests {
    /// A live proxy that keeps each release's assets (TranslateApp's manifest), with or without
    /// version affinity.
    static func proxyKeepingAssets(affinity: Bool) async throws -> LiveProxy {
        try await LiveProxy.start {
            $0.affinity = affinity
            $0.assetPrefix = "/assets/"
            $0.assetManifest = "/assets/manifest.json"
        }
    }

    /// The UI level through a 5.3 → 5.4 rollout of real TranslateApp processes behind a live
    /// proxy with version affinity and asset continuity: a page of 5.3 keeps talking to 5.3 and
    /// still loads its script after the last 5.3 server is gone.
    @Test func aPageOfTheOldReleaseKeepsItsReleaseAndItsAssetsThroughTheRollout() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-ui")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old1 = try App(release: "5.3", port: try freePort(), database: nil, log: directory + "/old1.log")
        defer { old1.stop() }
        let old2 = try App(release: "5.3", port: try freePort(), database: nil, log: directory + "/old2.log")
        defer { old2.stop() }
        let new1 = try App(release: "5.4", port: try freePort(), database: nil, log: directory + "/new1.log")
        defer { new1.stop() }
        for app in [old1, old2, new1] { try await app.waitUp() }
        let proxy = try await Self.proxyKeepingAssets(affinity: true)
        _ = try await proxy.admin.add(name: "web1-5.3", address: old1.endpoint.description, release: "5.3", timeout: .seconds(10))
        _ = try await proxy.admin.add(name: "web2-5.3", address: old2.endpoint.description, release: "5.3", timeout: .seconds(10))

        // A browser loads the 5.3 page and is pinned to 5.3 by the proxy's cookie.
        var cookie = ""
        func browse(_ path: String) async throws -> HTTPResponse {
            let response = try await HTTP1Client.send(HTTPRequest(.GET, path, headers: cookie.isEmpty ? [:] : ["cookie": cookie]), to: proxy.endpoint)
            for value in response.headers["set-cookie"] where value.hasPrefix("baton-release=") { cookie = String(value.prefix { $0 != ";" }) }
            return response
        }
        let page = try await browse("/")
        #expect(page.headers.first(name: "x-baton-release") == "5.3")
        let script = try #require(page.bodyString.range(of: #"/assets/app\.[0-9a-f]+\.js"#, options: .regularExpression).map { String(page.bodyString[$0]) })
        #expect(cookie == "baton-release=5.3")
        // The proxy read 5.3's manifest when 5.3 came up, and keeps what it lists.
        #expect(await eventually { proxy.server.assets?.isKept(script) == true })

        // 5.4 comes up: the 5.3 page's requests stay on 5.3, a new visitor gets 5.4.
        _ = try await proxy.admin.add(name: "web1-5.4", address: new1.endpoint.description, release: "5.4", timeout: .seconds(10))
        for _ in 0..<10 {
            #expect(try await browse("/").headers.first(name: "x-baton-release") == "5.3")
            #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: proxy.endpoint).headers.first(name: "x-baton-release") == "5.4")
        }

        // Every 5.3 server goes; the 5.3 page still loads its script, which no live server has.
        for name in ["web1-5.3", "web2-5.3"] {
            _ = try await proxy.admin.drain(name, timeout: .seconds(5))
            try await proxy.admin.remove(name)
        }
        old1.stop()
        old2.stop()
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, script), to: new1.endpoint).status == 404, "5.4 has 5.3's script itself")
        let asset = try await browse(script)
        #expect(asset.status == 200)
        #expect(asset.headers.first(name: "x-baton-release") == "5.3")
        #expect(asset.headers.first(name: "x-baton-asset") == "kept")
        #expect(asset.bodyString.contains("(5.3)"))
        let head = try await HTTP1Client.send(HTTPRequest(.HEAD, script), to: proxy.endpoint)
        #expect(head.status == 200 && head.body.readableBytes == 0)

        // Its next request moves to 5.4 and says so, so the page can offer a reload.
        let moved = try await browse("/api/projects")
        #expect(moved.headers.first(name: "x-baton-release-moved") == "5.3 -> 5.4")
        #expect(cookie == "baton-release=5.4")
        try await proxy.shutdown()
    }

    /// The probe's UI level through a rollout: users start on 5.3, 5.4 comes up beside it,
    /// then 5.3 goes. Without affinity pages meet the other release; with it none do, and the
    /// pages of 5.3 are told to reload when it goes.
    @Test(arguments: [false, true])
    func theProbeSeesMixedPagesWithoutAffinityAndNoneWithIt(affinity: Bool) async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-ui-probe")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = try App(release: "5.3", port: try freePort(), database: nil, log: directory + "/old.log")
        defer { old.stop() }
        let new = try App(release: "5.4", port: try freePort(), database: nil, log: directory + "/new.log")
        defer { new.stop() }
        for app in [old, new] { try await app.waitUp() }
        let proxy = try await Self.proxyKeepingAssets(affinity: affinity)
        // The proxy has read a release's manifest (it polls twice a second).
        func assetsKept(_ app: App) async throws -> Bool {
            let page = try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: app.endpoint).bodyString
            let script = try #require(Probe.assets(in: page).first)
            return await eventually { proxy.server.assets?.isKept(script) == true }
        }
        _ = try await proxy.admin.add(name: "web1-5.3", address: old.endpoint.description, release: "5.3", timeout: .seconds(10))
        #expect(try await assetsKept(old))

        let probe = Probe(scenario: .translate(baseURL: proxy.endpoint), options: .init(users: 6, rate: 40, duration: .seconds(6)))
        let running = Task { await probe.run() }
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await proxy.admin.add(name: "web2-5.4", address: new.endpoint.description, release: "5.4", timeout: .seconds(10))
        #expect(try await assetsKept(new))
        try await Task.sleep(for: .milliseconds(1500))
        _ = try await proxy.admin.drain("web1-5.3", timeout: .seconds(5))
        try await proxy.admin.remove("web1-5.3")
        let ui = await running.value.ui

        #expect(ui.pageLoads > 5 && ui.followUps > 20, "\(ui)")
        #expect(Set(ui.pageLoadsByRelease.keys) == ["5.3", "5.4"], "\(ui)")
        if affinity {
            #expect(ui.mismatches == 0, "\(ui.examples)")
            #expect(ui.moved > 0, "the pages of 5.3 open when it went were told so: \(ui)")
            #expect(ui.assetsMissing == 0, "\(ui.examples)")
        } else {
            #expect(ui.mismatches > 0, "\(ui)")
            #expect(ui.examples.contains { $0.contains("served by") }, "\(ui.examples)")
        }
        try await proxy.shutdown()
    }
}
