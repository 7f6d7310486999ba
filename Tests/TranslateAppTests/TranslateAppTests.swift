import BatonCore
import BatonProbe
import BatonTesting
import Foundation
import NIOHTTP1
import Testing

/// TranslateApp as real processes on a real PostgreSQL.
@Suite(.serialized) struct TranslateAppTests {
    final class App: Sendable {
        let pid: pid_t
        let endpoint: Endpoint

        init(release: String, port: Int, database: String, log: String) throws {
            pid = try ChildProcess.spawn(
                [try BuiltProducts.path("TranslateApp"), "--release", release, "--port", String(port), "--database-url", database],
                output: log, detached: false
            )
            endpoint = .tcp(host: "127.0.0.1", port: port)
        }

        func waitUp() async throws {
            for _ in 0..<200 {
                if (try? await HTTP1Client.send(HTTPRequest(.GET, "/up"), to: endpoint, timeout: .seconds(1)))?.status == 200 { return }
                try await Task.sleep(for: .milliseconds(25))
            }
            throw BatonError(.timeout, "TranslateApp on \(endpoint) did not come up")
        }

        func stop() {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func freePort() throws -> Int { try LocalPort.free() }

    @Test func sessionsAndNotesAreSharedAndSurviveARestart() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-translate")
        let database = try await PostgresCluster.start(under: directory)
        defer {
            database.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let url = database.url()
        let (portA, portB) = (try freePort(), try freePort())
        var a = try App(release: "5.3", port: portA, database: url, log: directory + "/a.log")
        let b = try App(release: "5.4", port: portB, database: url, log: directory + "/b.log")
        defer { a.stop(); b.stop() }
        try await a.waitUp()
        try await b.waitUp()

        let login = try await HTTP1Client.send(HTTPRequest(.POST, "/login", headers: ["content-type": "application/json"], body: #"{"user":"ann"}"#), to: a.endpoint)
        let cookie = try #require(login[header: "set-cookie"]?.split(separator: ";").first.map(String.init))
        let headers: HTTPHeaders = ["cookie": cookie, "content-type": "application/json"]

        // Any server serves any user.
        let projects = try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects", headers: headers), to: b.endpoint)
        #expect(projects.status == 200)
        #expect(projects[header: "x-baton-release"] == "5.4")
        #expect(projects.bodyString.contains("progress"), "5.4 shows translation progress")
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects"), to: b.endpoint).status == 401)

        // A write on one server is read on the other.
        #expect(try await HTTP1Client.send(HTTPRequest(.POST, "/api/notes", headers: headers, body: #"{"text":"note-42"}"#), to: a.endpoint).status == 201)
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/notes/note-42", headers: headers), to: b.endpoint).status == 200)

        // A restarted server (now on 5.4) logs no one out.
        a.stop()
        a = try App(release: "5.4", port: portA, database: url, log: directory + "/a2.log")
        try await a.waitUp()
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects", headers: headers), to: a.endpoint).status == 200)

        // Every server serves every release's hashed script, so mixed versions load their pages.
        for app in [a, b] {
            let page = try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: app.endpoint).bodyString
            let script = try #require(page.range(of: #"/assets/app\.[0-9a-f]+\.js"#, options: .regularExpression).map { String(page[$0]) })
            #expect(try await HTTP1Client.send(HTTPRequest(.GET, script), to: a.endpoint).status == 200)
            #expect(try await HTTP1Client.send(HTTPRequest(.GET, script), to: b.endpoint).status == 200)
        }
    }

    @Test func builtInProbeScenarioRunsCleanAgainstTheApp() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-translate")
        let database = try await PostgresCluster.start(under: directory)
        defer {
            database.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let app = try App(release: "5.3", port: try freePort(), database: database.url(), log: directory + "/app.log")
        defer { app.stop() }
        try await app.waitUp()
        let result = await Probe(scenario: .translate(baseURL: app.endpoint), options: .init(users: 5, rate: 60, duration: .seconds(2))).run()
        #expect(result.failed == 0, "\(result.records.filter { $0.outcome != .ok }.prefix(3))")
        #expect(result.logouts == 0)
        #expect(result.lostWrites.isEmpty)
        #expect(result.acknowledgedWrites > 5)
    }
}
