import BatonCore
import BatonProbe
import BatonTesting
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@Suite(.serialized) struct ProbeTests {
    func scenario(_ server: FaultServer) -> Scenario {
        Scenario(
            baseURL: server.endpoint,
            login: .init(method: .POST, path: "/login", body: #"{"user":"{user}"}"#, weight: 1, readBack: nil),
            steps: [
                .init(method: .GET, path: "/items", body: nil, weight: 3, readBack: nil),
                .init(method: .POST, path: "/items", body: #"{"token":"{token}"}"#, weight: 1, readBack: "/items/{token}"),
            ]
        )
    }

    @Test func countsExactlyTheInjectedFaults() async throws {
        let server = try await FaultServer.start(.init(errors: 3, resets: 2, logouts: 4, droppedWrites: 2, spacing: 5))
        let probe = Probe(scenario: scenario(server), options: .init(users: 5, rate: 150, duration: .seconds(3)))
        let result = await probe.run()
        let left = server.remaining
        #expect(left.errors == 0 && left.resets == 0 && left.logouts == 0 && left.droppedWrites == 0, "the run was too short to inject every fault")
        #expect(result.failed == 5, "3 503s + 2 resets")
        #expect(result.logouts == 4)
        #expect(result.lostWrites.count == 2)
        #expect(result.acknowledgedWrites > 10)
        #expect(result.total > 300)
        #expect(result.violations(of: .init(maxFailed: 0, maxLogouts: 0, maxLostWrites: 0)).count == 3)
        // Each failure is listed with its time, request, status and reason.
        let problems = result.problems
        #expect(problems.count == 9)
        #expect(problems.filter { $0.status == 503 && $0.error == "injected 503" && $0.request?.contains("/items") == true }.count == 3, "\(problems)")
        #expect(problems.filter { $0.status == 0 && $0.error?.isEmpty == false }.count == 2, "\(problems)")
        #expect(problems.filter { $0.outcome == .logout && $0.status == 401 }.count == 4)
        #expect(zip(problems, problems.dropFirst()).allSatisfy { $0.at <= $1.at })
        let json = try JSONSerialization.jsonObject(with: ReportWriter().json(result, markers: [])) as? [String: Any]
        #expect((json?["failures"] as? [[String: Any]])?.count == 9)
        // FaultServer names no release: the report says so instead of an empty chart.
        #expect(result.releaseNote?.contains("X-Baton-Release") == true)
        await server.stop()
    }

    @Test func aCleanRunPassesEveryThreshold() async throws {
        let server = try await FaultServer.start(.init())
        let result = await Probe(scenario: scenario(server), options: .init(users: 4, rate: 100, duration: .seconds(1))).run()
        #expect(result.failed == 0 && result.logouts == 0 && result.lostWrites.isEmpty)
        #expect(result.violations(of: .init(maxFailed: 0, maxLogouts: 0, maxLostWrites: 0, maxP99: .seconds(1))).isEmpty)
        #expect(result.summary.hasPrefix("0 failed of "))
        await server.stop()
    }

    @Test func aStallShowsInTheP99() async throws {
        // Open model: requests due while the server stalls wait in line and their latency counts
        // from when they were due, so a 2 s stall cannot hide behind fewer requests.
        let server = try await FaultServer.start(.init(stall: .seconds(2), spacing: 20))
        let result = await Probe(scenario: scenario(server), options: .init(users: 1, rate: 50, duration: .seconds(4))).run()
        #expect(result.p99 >= 1.5, "p99 \(result.p99)s")
        #expect(result.records.filter { $0.latency > 1 }.count > 20, "requests queued behind the stall must show it")
        await server.stop()
    }

    @Test func reportContainsItsSeries() async throws {
        let server = try await FaultServer.start(.init(errors: 1, spacing: 3))
        let result = await Probe(scenario: scenario(server), options: .init(users: 3, rate: 60, duration: .seconds(2))).run()
        let writer = ReportWriter()
        let markers = [ReportWriter.Marker(at: 0.5, label: "web1 draining 5.3")]
        let html = writer.html(result, markers: markers, title: "probe")
        // The page is well-formed XML, so it parses; and it holds the series it claims.
        let parser = XMLParser(data: Data(html.replacingOccurrences(of: "<!DOCTYPE html>", with: "").utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        for series in ["requests", "latency", "failures"] { #expect(html.contains("<svg id=\"\(series)\"")) }
        #expect(html.contains("data-series=\"p99\""))
        #expect(html.contains("data-series=\"failed\""))
        #expect(html.contains("web1 draining 5.3"))
        #expect(html.contains(result.summary))
        #expect(html.contains("<table id=\"failures-list\">"))
        #expect(html.contains("injected 503"))
        let json = try JSONSerialization.jsonObject(with: writer.json(result, markers: markers)) as? [String: Any]
        #expect(json?["failed"] as? Int == 1)
        #expect((json?["seconds"] as? [Any])?.isEmpty == false)
        await server.stop()
    }

    @Test func scenarioFilesAreValidated() throws {
        let good = """
            base_url: http://127.0.0.1:8080
            login: { method: POST, path: /login, body: '{"user":"{user}"}' }
            requests:
              - { method: GET, path: /api/projects, weight: 3 }
              - { method: POST, path: /api/notes, body: '{"text":"{token}"}', read_back: '/api/notes/{token}' }
            """
        let scenario = try Scenario.parse(good, file: "probe.yml")
        #expect(scenario.steps.count == 2)
        #expect(scenario.steps[0].weight == 3)
        #expect(throws: BatonError.self) { try Scenario.parse(good.replacingOccurrences(of: "GET", with: "FETCH"), file: "probe.yml") }
        #expect(scenario.releaseHeader == "X-Baton-Release")
        #expect(try Scenario.parse(good + "\nrelease_header: X-App-Version", file: "probe.yml").releaseHeader == "X-App-Version")
        #expect(throws: BatonError.self) { try Scenario.parse(good + "\nrelease_header: 'Bad: name'", file: "probe.yml") }
        do {
            _ = try Scenario.parse(good.replacingOccurrences(of: "'/api/notes/{token}'", with: "/api/notes/x"), file: "probe.yml")
            Issue.record("read_back without {token} must be refused")
        } catch let error as BatonError {
            #expect(error.message == "probe.yml:5: requests[1].read_back: must contain {token}")
        }
    }
}
