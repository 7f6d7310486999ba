import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

extension LiveProxyTests {
    /// Version affinity through a real 5.3 → 5.4 rollout on a live proxy: a browser with a cookie
    /// jar, an API client with the pin header, and a client that never had a cookie.
    @Suite struct AffinityTests {
        /// A browser's cookie jar, reduced to the one cookie the proxy sets.
        final class Browser: @unchecked Sendable {
            var cookie: String?
            var moves: [String] = []

            func load(_ path: String, from proxy: LiveProxy) async throws -> HTTPResponse {
                var headers = HTTPHeaders()
                if let cookie { headers.add(name: "cookie", value: "session=abc; \(VersionAffinity.cookieName)=\(cookie)") }
                let response = try await get(path, from: proxy.endpoint, headers: headers)
                for value in response.headers["set-cookie"] where value.hasPrefix(VersionAffinity.cookieName + "=") {
                    cookie = String(value.dropFirst(VersionAffinity.cookieName.count + 1).prefix { $0 != ";" })
                }
                moves += response.headers[VersionAffinity.movedHeader]
                return response
            }
        }

        static func add(_ backend: TestBackend, release: String, to proxy: LiveProxy) async throws {
            _ = try await proxy.admin.add(name: backend.name, address: backend.address, release: release, timeout: .seconds(10))
        }

        @Test func browsersKeepTheirReleaseUntilItDrainsThenMoveAndAreTold() async throws {
            let old1 = try await TestBackend.start(name: "web1-5.3")
            let old2 = try await TestBackend.start(name: "web2-5.3")
            let new1 = try await TestBackend.start(name: "web1-5.4")
            let proxy = try await LiveProxy.start { $0.affinity = true }
            try await Self.add(old1, release: "5.3", to: proxy)
            try await Self.add(old2, release: "5.3", to: proxy)

            let early = Browser()
            #expect(try await early.load("/", from: proxy).headers.first(name: "x-baton-backend")?.hasSuffix("-5.3") == true)
            #expect(early.cookie == "5.3")

            try await Self.add(new1, release: "5.4", to: proxy)
            let late = Browser()
            for _ in 0..<20 {
                let old = try await early.load("/", from: proxy)
                #expect(old.headers.first(name: "x-baton-backend")?.hasSuffix("-5.3") == true, "a 5.3 page's request went to \(old.headers.first(name: "x-baton-backend") ?? "?")")
                let new = try await late.load("/", from: proxy)
                #expect(new.headers.first(name: "x-baton-backend") == "web1-5.4", "a new session went to \(new.headers.first(name: "x-baton-backend") ?? "?")")
            }
            #expect(late.cookie == "5.4")
            #expect(early.moves.isEmpty && late.moves.isEmpty)

            // The last 5.3 backend drains: the old page moves on once, and is told.
            for name in ["web1-5.3", "web2-5.3"] {
                _ = try await proxy.admin.drain(name, timeout: .seconds(5))
                try await proxy.admin.remove(name)
            }
            let moved = try await early.load("/", from: proxy)
            #expect(moved.status == 200)
            #expect(moved.headers.first(name: "x-baton-backend") == "web1-5.4")
            #expect(early.moves == ["5.3 -> 5.4"])
            #expect(early.cookie == "5.4")
            _ = try await early.load("/", from: proxy)
            #expect(early.moves.count == 1, "the move is announced once, not on every later response")

            try await proxy.shutdown()
            for backend in [old1, old2, new1] { await backend.stop() }
        }

        @Test func thePinHeaderKeepsAPIAndServiceCallsInOneReleaseAndReachesTheApp() async throws {
            let old = try await TestBackend.start(name: "web1-5.3")
            let new = try await TestBackend.start(name: "web1-5.4")
            let proxy = try await LiveProxy.start { $0.affinity = true }
            try await Self.add(old, release: "5.3", to: proxy)
            try await Self.add(new, release: "5.4", to: proxy)

            for _ in 0..<10 {
                let pinned = try await get("/echo", from: proxy.endpoint, headers: [VersionAffinity.pinHeader: "5.3"])
                #expect(pinned.headers.first(name: "x-baton-backend") == "web1-5.3")
                // An API client chose its release itself: no cookie is pushed on it.
                #expect(!pinned.headers["set-cookie"].contains { $0.hasPrefix(VersionAffinity.cookieName) })
                let echoed = try JSONSerialization.jsonObject(with: Data(pinned.bodyString.utf8)) as? [String: String]
                #expect(echoed?[VersionAffinity.pinHeader] == "5.3", "the app is told which release served, to pass it on")
            }
            // Unpinned calls carry the release that served them too.
            let unpinned = try await get("/echo", from: proxy.endpoint)
            let echoed = try JSONSerialization.jsonObject(with: Data(unpinned.bodyString.utf8)) as? [String: String]
            #expect(echoed?[VersionAffinity.pinHeader] == "5.4")

            // A pin to a release no backend runs, or one that is not a release name, is ignored.
            for bogus in ["9.9", "5.3,", "5.3/", String(repeating: "x", count: 65), "a b"] {
                var headers = HTTPHeaders()
                headers.add(name: "cookie", value: "\(VersionAffinity.cookieName)=\(bogus)")
                let response = try await get("/", from: proxy.endpoint, headers: headers)
                #expect(response.status == 200)
                #expect(response.headers.first(name: "x-baton-backend") == "web1-5.4", "\(bogus)")
            }
            try await proxy.shutdown()
            for backend in [old, new] { await backend.stop() }
        }

        @Test func aRollbackMakesTheReadmittedReleaseTheNewestAndRetriesStillCrossReleases() async throws {
            let old = try await TestBackend.start(name: "web1-5.3")
            let new = try await TestBackend.start(name: "web2-5.4")
            let proxy = try await LiveProxy.start { $0.affinity = true }
            try await Self.add(old, release: "5.3", to: proxy)
            _ = try await proxy.admin.drain("web1-5.3", timeout: .seconds(5))
            try await Self.add(new, release: "5.4", to: proxy)
            #expect(try await get("/", from: proxy.endpoint).headers.first(name: "x-baton-backend") == "web2-5.4")

            // Rolling back: 5.3 is put back, so new sessions go to it again.
            _ = try await proxy.admin.markReady("web1-5.3")
            #expect(await eventually { (try? await proxy.admin.backend("web1-5.3").state) == .ready })
            #expect(try await get("/", from: proxy.endpoint).headers.first(name: "x-baton-backend") == "web1-5.3")

            // A pinned release whose only backend dies: the request is retried on the other
            // release rather than failed.
            await old.kill()
            let response = try await get("/", from: proxy.endpoint, headers: [VersionAffinity.pinHeader: "5.3"])
            #expect(response.status == 200)
            #expect(response.headers.first(name: "x-baton-backend") == "web2-5.4")
            try await proxy.shutdown()
            await new.stop()
        }

        @Test func withoutAffinityNoCookieIsSetAndReleasesShareTheLoad() async throws {
            let old = try await TestBackend.start(name: "web1-5.3")
            let new = try await TestBackend.start(name: "web1-5.4")
            let proxy = try await LiveProxy.start()
            try await Self.add(old, release: "5.3", to: proxy)
            try await Self.add(new, release: "5.4", to: proxy)
            var served: Set<String> = []
            for _ in 0..<20 {
                let response = try await get("/", from: proxy.endpoint, headers: [VersionAffinity.pinHeader: "5.3"])
                served.insert(response.headers.first(name: "x-baton-backend") ?? "")
                #expect(response.headers["set-cookie"].isEmpty)
            }
            #expect(served == ["web1-5.3", "web1-5.4"])
            // The release is kept in the saved list, so a restarted proxy still knows it.
            #expect(try await proxy.admin.backend("web1-5.4").release == "5.4")
            try await proxy.shutdown()
            for backend in [old, new] { await backend.stop() }
        }
    }
}
