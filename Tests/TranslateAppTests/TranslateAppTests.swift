import BatonCore
import BatonDemo
import BatonMigrate
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

        /// Without `database` the app keeps its data in memory.
        init(release: String, port: Int, database: String?, log: String) throws {
            pid = try ChildProcess.spawn(
                [try BuiltProducts.path("TranslateApp"), "--release", release, "--port", String(port)] + (database.map { ["--database-url", $0] } ?? []),
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

        /// Waits up to 20 s for the process to exit by itself; its status, or nil.
        func waitExit() -> Int32? {
            for _ in 0..<800 {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { return status }
                usleep(25_000)
            }
            return nil
        }

        func stop() {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    func freePort() throws -> Int { try LocalPort.free() }

    @Test func liveChannelAcknowledgesMessagesOverAWebSocket() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-translate")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let app = try App(release: "5.4", port: try freePort(), database: nil, log: directory + "/app.log")
        defer { app.stop() }
        try await app.waitUp()
        let client = try await WebSocketClient.connect(to: app.endpoint, path: "/api/live")
        #expect(client.handshake.lowercased().contains("x-baton-release: 5.4"), "\(client.handshake)")
        for index in 0..<20 {
            try await client.send("edit \(index)")
            #expect(await client.next()?.text == "edit \(index)")
        }
        try await client.sendClose(code: 1000)
        #expect(await client.next()?.closeCode == 1000)
        await client.close()
        // Only the live channel upgrades: elsewhere the request is served as plain HTTP.
        await #expect(throws: BatonError.self) { try await WebSocketClient.connect(to: app.endpoint, path: "/api/projects") }
    }

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
        defer { a.stop() }
        try await a.waitUp()

        // 5.4 reads through migration 54_segment_words's schema and refuses to start without it.
        let early = try App(release: "5.4", port: portB, database: url, log: directory + "/early.log")
        #expect(early.waitExit() != nil, "5.4 exits without its schema")
        let earlyLog = (try? String(contentsOfFile: directory + "/early.log", encoding: .utf8)) ?? ""
        #expect(earlyLog.contains("run: baton migrate start"), "\(earlyLog.suffix(300))")

        let session = try await PostgresSession.connect(url: url)
        let migrator = Migrator(session: session)
        do {
            try await migrator.start(try Migration.load(path: try TranslateExamples.migrations() + "/" + TranslateExamples.release54))
        } catch {
            await session.close()
            throw error
        }
        let b = try App(release: "5.4", port: portB, database: url, log: directory + "/b.log")
        defer { b.stop() }
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

        // The same segment through both releases: 5.3 writes `translation`, 5.4 reads `target`.
        let put = HTTPRequest(.PUT, "/api/segments/2", headers: headers, body: #"{"translation":"Anmelden bitte"}"#)
        #expect(try await HTTP1Client.send(put, to: a.endpoint).status == 200)
        let seen = try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects/1/segments", headers: headers), to: b.endpoint).bodyString
        #expect(seen.contains(#""translation":"Anmelden bitte""#) && seen.contains(#""words":2"#), "\(seen)")
        let back = HTTPRequest(.PUT, "/api/segments/4", headers: headers, body: #"{"translation":"Einstellungen"}"#)
        #expect(try await HTTP1Client.send(back, to: b.endpoint).status == 200)
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects/2/segments", headers: headers), to: a.endpoint).bodyString.contains("Einstellungen"))

        // A restarted server (now on 5.4) logs no one out.
        a.stop()
        a = try App(release: "5.4", port: portA, database: url, log: directory + "/a2.log")
        try await a.waitUp()
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects", headers: headers), to: a.endpoint).status == 200)

        // Each server serves its own release's hashed script and lists it in its manifest; no
        // other release's is there (the proxy keeps those: AssetContinuityTests).
        for app in [a, b] {
            let page = try await HTTP1Client.send(HTTPRequest(.GET, "/"), to: app.endpoint).bodyString
            let script = try #require(page.range(of: #"/assets/app\.[0-9a-f]+\.js"#, options: .regularExpression).map { String(page[$0]) })
            #expect(try await HTTP1Client.send(HTTPRequest(.GET, script), to: app.endpoint).status == 200)
            #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/assets/manifest.json"), to: app.endpoint).bodyString.contains(script.dropFirst("/assets/".count)))
        }
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/assets/app.0.js"), to: a.endpoint).status == 404)

        // Once every server runs 5.4 the migration completes under them; they go on working.
        do {
            try await migrator.complete()
        } catch {
            await session.close()
            throw error
        }
        await session.close()
        #expect(try await HTTP1Client.send(HTTPRequest(.GET, "/api/projects/2/segments", headers: headers), to: a.endpoint).bodyString.contains("Einstellungen"))
        #expect(try await HTTP1Client.send(HTTPRequest(.PUT, "/api/segments/1", headers: headers, body: #"{"translation":"Hallo"}"#), to: b.endpoint).status == 200)
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
