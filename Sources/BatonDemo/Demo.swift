import BatonCore
import BatonMigrate
import BatonProbe
import BatonProxy
import BatonRollout
import Foundation
import NIOConcurrencyHelpers

/// `baton demo`: the whole story on this machine. A throwaway PostgreSQL, `baton proxy`, four
/// TranslateApp 5.3 nodes; synthetic users log in and work while 5.4's migration starts
/// (expand), 5.4 is rolled out, and the migration completes (contract); then the report, and
/// everything stopped and removed, also when interrupted.
public struct Demo: Sendable {
    public struct Options: Sendable {
        public var quick: Bool
        public var directory: String
        public var reportDirectory: String

        public init(quick: Bool, directory: String, reportDirectory: String) {
            self.quick = quick
            self.directory = directory
            self.reportDirectory = reportDirectory
        }
    }

    public struct Outcome: Sendable {
        public var summary: String
        public var result: ProbeResult
        public var releasesServed: [String]
        public var passed: Bool
    }

    let options: Options
    let say: @Sendable (String) -> Void

    public init(options: Options, say: @escaping @Sendable (String) -> Void = { print($0); fflush(nil) }) {
        self.options = options
        self.say = say
    }

    public func run() async throws -> Outcome {
        let directory = options.directory
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let resources = Resources()
        do {
            let outcome = try await stage(in: directory, resources: resources)
            await resources.release(directory: directory)
            return outcome
        } catch {
            await resources.release(directory: directory)
            throw error
        }
    }

    /// What must be stopped, whatever happens.
    final class Resources: Sendable {
        let database = NIOLockedValueBox<PostgresCluster?>(nil)
        /// The `baton proxy` process started, and the one serving now (another after an upgrade).
        let proxy = NIOLockedValueBox<(first: pid_t, serving: pid_t)?>(nil)
        let config = NIOLockedValueBox<BatonConfig?>(nil)
        let session = NIOLockedValueBox<PostgresSession?>(nil)

        func release(directory: String) async {
            await session.withLockedValue { $0 }?.close()
            if let config = config.withLockedValue({ $0 }) {
                let driver = LocalProcessDriver(stateDirectory: config.stateDirectory)
                for node in config.nodes {
                    for instance in driver.instances(node: node.name) {
                        try? await driver.stop(instance, signal: SIGTERM, grace: .seconds(3))
                    }
                }
            }
            if let (first, serving) = proxy.withLockedValue({ $0 }) {
                // SIGTERM drains as in production. The proxy has a process group of its own,
                // which a process an upgrade started is in too (even one the demo never heard of,
                // when an upgrade was cut short). Waited for without Task.sleep: on Ctrl-C this
                // task is cancelled.
                kill(-first, SIGTERM)
                var status: Int32 = 0
                for _ in 0..<150 {
                    if waitpid(first, &status, WNOHANG) == first || !ChildProcess.isRunning(first) {
                        if !ChildProcess.isRunning(serving) { break }
                    }
                    usleep(100_000)
                }
                kill(-first, SIGKILL)
                waitpid(first, &status, 0)
            }
            database.withLockedValue { $0 }?.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    private func stage(in directory: String, resources: Resources) async throws -> Outcome {
        let quick = options.quick
        say("==> PostgreSQL: a throwaway cluster under \(directory)")
        let database = try await PostgresCluster.start(under: directory)
        resources.database.withLockedValue { $0 = database }

        say("==> baton proxy, with version affinity and asset continuity")
        let proxyPort = try LocalPort.free()
        let proxyPid = try ChildProcess.spawn([
            try BuiltProducts.path("baton"), "proxy", "--listen", "127.0.0.1:\(proxyPort)",
            "--admin-socket", directory + "/proxy.sock", "--state-file", directory + "/proxy-backends.json",
            "--health-interval", "200ms", "--health-timeout", "1s", "--health-rise", "2", "--health-fall", "2", "--threads", "2",
            "--affinity", "--asset-prefix", "/assets/", "--asset-manifest", "/assets/manifest.json", "--log-level", "warning",
        ], output: directory + "/proxy.log", detached: true)
        resources.proxy.withLockedValue { $0 = (proxyPid, proxyPid) }
        let admin = AdminClient(endpoint: .unix(path: directory + "/proxy.sock"), timeout: .seconds(60))
        var started = false
        for _ in 0..<300 where !started {
            var status: Int32 = 0
            if waitpid(proxyPid, &status, WNOHANG) == proxyPid {
                resources.proxy.withLockedValue { $0 = nil }
                throw BatonError(.unavailable, "baton proxy exited with status \(ChildProcess.exitCode(status)); see \(directory)/proxy.log")
            }
            started = (try? await admin.list()) != nil
            if !started { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard started else { throw BatonError(.unavailable, "baton proxy did not start within 30 s; see \(directory)/proxy.log") }

        let app = try BuiltProducts.path("TranslateApp")
        let migration = try Migration.load(path: try TranslateExamples.migrations() + "/" + TranslateExamples.release54)
        for release in ["5.3", "5.4"] {
            let artifact = "\(directory)/artifacts/\(release)"
            try FileManager.default.createDirectory(atPath: artifact, withIntermediateDirectories: true)
            try "#!/bin/sh\nexec '\(app)' \"$@\"\n".write(toFile: artifact + "/run", atomically: true, encoding: .utf8)
            chmod(artifact + "/run", 0o755)
            // Each release ships its OpenAPI document: `baton deploy` compares them first.
            try FileManager.default.copyItem(atPath: try TranslateExamples.openapi(release: release), toPath: artifact + "/openapi.yaml")
            // And names the version schema it uses: `migrate complete` waits for the fleet.
            try (release == "5.3" ? "public" : "public_" + (migration.versionSchema ?? migration.name)).write(toFile: artifact + "/database-schema", atomically: true, encoding: .utf8)
        }
        let nodes = try (1...4).map { "  - { name: web\($0), port: \(try LocalPort.free()) }" }.joined(separator: "\n")
        let yaml = """
            service: translate
            state_dir: state
            proxies:
              - admin_socket: proxy.sock
            nodes:
            \(nodes)
            release:
              start: "{dir}/run --release {release} --port {port} --database-url \(database.url())"
              stop_grace: 10s
            health:
              interval: 100ms
              rise: 2
              startup_grace: 30s
              min_ready: \(quick ? "300ms" : "1s")
            rollout:
              max_unavailable: 1
              canary: 1
              observe: \(quick ? "1s" : "3s")
              max_error_rate: 0.01
              drain_timeout: 10s
            """
        let configPath = directory + "/baton.yml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let config = try BatonConfig.load(path: configPath)
        resources.config.withLockedValue { $0 = config }
        let rollout = Rollout(config: config, reporter: PlainReporter())
        for release in ["5.3", "5.4"] {
            try rollout.releases.add(source: "\(directory)/artifacts/\(release)", id: release, keep: 5, protected: [])
        }

        say("==> four TranslateApp 5.3 nodes behind the proxy")
        try await rollout.deploy(release: "5.3", resume: false)

        let users = quick ? 10 : 20
        let rate = quick ? 40 : 60
        say("==> \(users) synthetic users log in and work (\(rate) requests/s)")
        let probeStart = Date()
        let stop = NIOLockedValueBox(false)
        let probe = Probe(
            scenario: .translate(baseURL: .tcp(host: "127.0.0.1", port: proxyPort)),
            options: .init(users: users, rate: rate, duration: .seconds(3600))
        )
        let probing = Task { await probe.run(until: { stop.withLockedValue { $0 } }) }
        // Also when a later step fails: the users stop.
        defer { stop.withLockedValue { $0 = true } }
        try await Task.sleep(for: .seconds(quick ? 3 : 10))

        say("==> baton migrate start \(migration.name): 5.4's schema version beside 5.3's, under load")
        let session = try await PostgresSession.connect(url: database.url())
        resources.session.withLockedValue { $0 = session }
        let migrator = Migrator(session: session) { event in if case .phase(let text) = event { say("    " + text) } }
        var migrationMarkers = [ReportWriter.Marker(at: Date().timeIntervalSince(probeStart), label: "migrate start")]
        try await migrator.start(migration)

        say("==> rolling deploy of 5.4 under load")
        let deployStart = Date()
        try await rollout.deploy(release: "5.4", resume: false)
        let deployEnd = Date()

        say("==> baton proxy upgrade: a new proxy process takes the listening socket over, under load")
        let upgradeMarker = ReportWriter.Marker(at: Date().timeIntervalSince(probeStart), label: "proxy upgrade")
        let upgrade = try await admin.upgrade()
        resources.proxy.withLockedValue { $0?.serving = upgrade.newPid }
        say("    pid \(upgrade.oldPid) -> \(upgrade.newPid); the old process drains and exits")

        say("==> baton migrate complete --fleet: no node and no session uses 5.3's schema version any more, so it goes")
        migrationMarkers.append(.init(at: Date().timeIntervalSince(probeStart), label: "migrate complete"))
        try await migrator.complete { try await rollout.nodesUsing(versionSchema: $0) }
        try await Task.sleep(for: .seconds(quick ? 2 : 5))
        stop.withLockedValue { $0 = true }
        let result = await probing.value

        let from = deployStart.timeIntervalSince(probeStart)
        let to = deployEnd.timeIntervalSince(probeStart)
        let steady = result.records.filter { $0.at < from }
        let during = result.records.filter { $0.at >= from && $0.at < to }
        let served = Array(Set(result.records.compactMap(\.release))).sorted()
        let markers = (deployMarkers(try await DeployJournal(path: config.stateDirectory + "/journal.jsonl").events(), since: probeStart) + migrationMarkers + [upgradeMarker])
            .sorted { $0.at < $1.at }
        try FileManager.default.createDirectory(atPath: options.reportDirectory, withIntermediateDirectories: true)
        let writer = ReportWriter()
        try writer.json(result, markers: markers).write(to: URL(fileURLWithPath: options.reportDirectory + "/report.json"))
        try writer.html(result, markers: markers, title: "baton demo: TranslateApp 5.3 → 5.4").write(
            toFile: options.reportDirectory + "/report.html", atomically: true, encoding: .utf8
        )
        let count = NumberFormatter.localizedString(from: NSNumber(value: result.total), number: .decimal)
        let summary = "\(result.failed) failed of \(count) requests · \(result.logouts) logouts · \(result.lostWrites.count) lost writes"
            + " · p99 \(Self.ms(ProbeResult.percentile(0.99, of: steady))) steady / \(Self.ms(ProbeResult.percentile(0.99, of: during))) during rollout · rollout \(Int((to - from).rounded())) s"
            + "\nui: \(result.ui.summary)"
        let passed = result.failed == 0 && result.logouts == 0 && result.lostWrites.isEmpty && served.count >= 2
            && result.ui.pageLoads > 0 && result.ui.followUps > 0 && result.ui.mismatches == 0 && result.ui.assetsMissing == 0
        return Outcome(summary: summary, result: result, releasesServed: served, passed: passed)
    }

    static func ms(_ seconds: Double) -> String { "\(Int((seconds * 1000).rounded())) ms" }
}
