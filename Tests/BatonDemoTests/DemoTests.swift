import BatonCore
import BatonDemo
import BatonProbe
import BatonRollout
import Foundation
import Testing

/// `baton demo --quick` as a user runs it: a real process, in a directory of its own.
@Suite(.serialized) struct DemoTests {
    struct Run {
        var status: Int32
        var output: String
        var directory: String
    }

    /// Runs the demo; with `interruptAfter`, sends SIGINT once that text has been printed.
    func demo(interruptAfter marker: String? = nil) throws -> Run {
        let directory = "/tmp/baton-demo-test-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("baton"))
        process.arguments = ["demo", "--quick"]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = directory + "/demo.out"
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output)
        process.standardError = FileHandle(forWritingAtPath: output)
        try process.run()
        if let marker {
            while process.isRunning {
                if (try? String(contentsOfFile: output, encoding: .utf8))?.contains(marker) == true {
                    kill(process.processIdentifier, SIGINT)
                    break
                }
                usleep(20_000)
            }
        }
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "", directory: directory)
    }

    /// Processes whose command line mentions `text`.
    func processes(mentioning text: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { Int($0) != nil }.compactMap { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let command = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return command.contains(text) && !command.contains("baton-demo-test-") ? command : nil
        }
    }

    @Test func quickDemoProvesZeroDowntimeAndCleansUp() throws {
        let run = try demo()
        defer { try? FileManager.default.removeItem(atPath: run.directory) }
        #expect(run.status == 0, "\(run.output.suffix(2000))")
        #expect(run.output.contains("0 failed of "), "\(run.output.suffix(500))")
        #expect(run.output.contains(" · 0 logouts · 0 lost writes · "))
        #expect(run.output.contains("releases served: 5.3, 5.4"))
        #expect(run.output.contains("54_segment_words is active: the new version is schema public_54_segment_words"))
        #expect(run.output.contains("54_segment_words is complete"))
        #expect(run.output.contains("compat openapi 5.3 → 5.4: compatible both ways: roll out in any order"), "the deploy's compat pre-flight ran")

        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run.directory + "/baton-demo-report/report.json"))) as? [String: Any]
        #expect(report?["failed"] as? Int == 0)
        #expect(report?["logouts"] as? Int == 0)
        #expect((report?["lostWrites"] as? [String])?.isEmpty == true)
        #expect(((report?["acknowledgedWrites"] as? Int) ?? 0) > 0)
        let seconds = (report?["seconds"] as? [[String: Any]]) ?? []
        let releases = Set(seconds.flatMap { (($0["byRelease"] as? [String: Int]) ?? [:]).keys })
        #expect(releases == ["5.3", "5.4"], "both releases served traffic during the run")
        #expect(FileManager.default.fileExists(atPath: run.directory + "/baton-demo-report/report.html"))
        let markers = ((report?["markers"] as? [[String: Any]]) ?? []).compactMap { $0["label"] as? String }
        #expect(markers.contains("migrate start") && markers.contains("migrate complete") && markers.contains("proxy upgrade"), "\(markers)")

        // The UI level: pages kept to their release through the mixed window (affinity), their
        // scripts loaded, and the proxy process was replaced mid-run without a failed request.
        let ui = (report?["ui"] as? [String: Any]) ?? [:]
        #expect((ui["pageLoads"] as? Int ?? 0) > 0, "\(ui)")
        #expect((ui["followUps"] as? Int ?? 0) > 0, "\(ui)")
        #expect(ui["mismatches"] as? Int == 0, "\(ui)")
        #expect((ui["assetLoads"] as? Int ?? 0) > 0 && ui["assetsMissing"] as? Int == 0, "\(ui)")
        #expect(Set(((ui["pageLoadsByRelease"] as? [String: Int]) ?? [:]).keys) == ["5.3", "5.4"], "\(ui)")
        #expect(run.output.contains("ui: ") && run.output.contains(", 0 served by another release"), "\(run.output.suffix(800))")
        #expect(run.output.firstMatch(of: #/pid \d+ -> \d+; the old process drains and exits/#) != nil, "\(run.output.suffix(1500))")
        let html = try String(contentsOfFile: run.directory + "/baton-demo-report/report.html", encoding: .utf8)
        #expect(html.contains("id=\"ui-level\""))

        // Nothing it started is left, and its working directory is gone.
        #expect(!FileManager.default.fileExists(atPath: run.directory + "/.baton/demo"))
        #expect(processes(mentioning: run.directory + "/.baton/demo").isEmpty)
        #expect(processes(mentioning: "--database-url postgres://baton@127.0.0.1").isEmpty, "TranslateApp nodes were left running")
    }

    @Test func interruptedDemoStopsEverythingItStarted() throws {
        let run = try demo(interruptAfter: "rolling deploy of 5.4")
        defer { try? FileManager.default.removeItem(atPath: run.directory) }
        #expect(run.status != 0, "an interrupted demo must not claim success")
        #expect(!FileManager.default.fileExists(atPath: run.directory + "/.baton/demo"))
        #expect(processes(mentioning: run.directory + "/.baton/demo").isEmpty, "\(processes(mentioning: run.directory))")
        #expect(processes(mentioning: "--database-url postgres://baton@127.0.0.1").isEmpty, "TranslateApp nodes were left running")
    }
}

@Suite struct DeployMarkerTests {
    @Test func aRollbackIsCalledOneFromStartToEnd() {
        let start = Date()
        let events = [
            RolloutEvent(deployment: "d-1", kind: .deployStarted, target: "5.4", previous: "5.3", nodes: ["web1"], isRollback: false, time: start + 1),
            RolloutEvent(deployment: "d-1", kind: .finished, release: "5.4", time: start + 2),
            RolloutEvent(deployment: "d-2", kind: .deployStarted, target: "5.3", previous: "5.4", nodes: ["web1"], isRollback: true, time: start + 3),
            RolloutEvent(deployment: "d-2", kind: .finished, release: "5.3", time: start + 4),
        ]
        #expect(deployMarkers(events, since: start).map(\.label) == ["deploy 5.4", "deploy finished", "rollback to 5.3", "rollback finished"])
    }
}
