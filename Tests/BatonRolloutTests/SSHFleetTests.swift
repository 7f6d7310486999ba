import BatonCore
import BatonProxy
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// Real hosts: each a network namespace with its own address, sshd, user and home, reached with
/// the system OpenSSH client; the app listens on port 3000 on every host. Needs root (CI is).
@Suite(.serialized, .enabled(if: NamespaceHosts.available, "needs root, sshd and iproute2"))
struct SSHFleetTests {
    /// Four hosts behind two `baton proxy` instances, load through both: every release is
    /// shipped to every host and verified, nothing fails, and each host runs the release under
    /// its supervisor from its own releases directory.
    @Test func rollingDeployAcrossHostsBehindTwoProxiesFailsNothing() async throws {
        let hosts = try await NamespaceHosts.make(count: 4)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(hosts: hosts, proxies: 2)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))
        #expect(fleet.proxy.server.pool.list().map(\.address).sorted() == hosts.hosts.map { "\($0.address):3000" }.sorted())

        let loads = fleet.proxies.map { LoadGenerator.start(against: $0.endpoint, concurrency: 3, request: translateRequests) }
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        for load in loads {
            let result = await load.stop()
            #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
            #expect(result.total > 50)
        }
        #expect(try await fleet.everyNodeRuns("5.4"))
        #expect(fleet.proxyServesOnly("5.4"))
        for host in hosts.hosts {
            // Both releases arrived and were verified; the host's user owns them.
            for release in ["5.3", "5.4"] {
                let sum = try String(contentsOfFile: "\(host.home)/.baton/translate/releases/\(release).sha256", encoding: .utf8)
                #expect(sum.trimmingCharacters(in: .whitespacesAndNewlines) == (try await SSHDriver.localChecksum(of: "\(fleet.directory)/artifacts/\(release)")))
                #expect(try await SSHDriver.localChecksum(of: "\(host.home)/.baton/translate/releases/\(release)") == (try await SSHDriver.localChecksum(of: "\(fleet.directory)/artifacts/\(release)")))
                #expect(FileManager.default.isExecutableFile(atPath: "\(host.home)/.baton/translate/releases/\(release)/run"))
            }
            let owner = try FileManager.default.attributesOfItem(atPath: "\(host.home)/.baton/translate/releases/5.4")[.ownerAccountName] as? String
            #expect(owner == host.user)
        }
        await fleet.cleanup()
    }

    /// `baton node install-baton`: this binary lands on every host once, verified, owned by
    /// the host's user, and runs there; a second install copies nothing.
    @Test func thisBatonIsInstalledOnEveryHostOnce() async throws {
        let hosts = try await NamespaceHosts.make(count: 2)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(hosts: hosts)
        let binary = try BuiltProducts.path("baton")
        let lines = try await fleet.rollout().installBaton(binary, nodes: [])
        #expect(lines.count == 2, "\(lines)")
        let (_, local) = try ChildProcess.run(["/usr/bin/sha256sum", binary])
        var modified: [String: Date] = [:]
        for host in hosts.hosts {
            let installed = "\(host.home)/.baton/translate/bin/baton"
            #expect(lines.contains { $0.hasPrefix("\(host.user)@\(host.address): ") && $0.hasSuffix(BatonVersion.number) }, "\(lines)")
            let (_, remote) = try ChildProcess.run(["/usr/bin/sha256sum", installed])
            #expect(remote.prefix(64) == local.prefix(64))
            #expect(try FileManager.default.attributesOfItem(atPath: installed)[.ownerAccountName] as? String == host.user)
            modified[host.user] = try FileManager.default.attributesOfItem(atPath: installed)[.modificationDate] as? Date
        }
        _ = try await fleet.rollout().installBaton(binary, nodes: ["web1"])
        #expect(try FileManager.default.attributesOfItem(atPath: "\(hosts.hosts[0].home)/.baton/translate/bin/baton")[.modificationDate] as? Date == modified[hosts.hosts[0].user])
        await #expect(throws: BatonError.self) { try await fleet.rollout().installBaton(binary, nodes: ["web9"]) }
        // A binary that cannot run on the host never replaces the one there.
        let broken = fleet.directory + "/broken-baton"
        try "#!/bin/sh\necho 'cannot run here' >&2\nexit 1\n".write(toFile: broken, atomically: true, encoding: .utf8)
        chmod(broken, 0o755)
        let refused = await #expect(throws: BatonError.self) { try await fleet.rollout().installBaton(broken, nodes: ["web1"]) }
        #expect(refused?.message.contains("the binary does not run on this host (cannot run here)") == true, "\(refused?.message ?? "")")
        let (_, kept) = try ChildProcess.run(["/usr/bin/sha256sum", "\(hosts.hosts[0].home)/.baton/translate/bin/baton"])
        #expect(kept.prefix(64) == local.prefix(64))
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(hosts.hosts[0].home)/.baton/translate/bin").filter { $0.hasPrefix(".baton.") }.isEmpty)
        await fleet.cleanup()
    }

    /// Three hosts behind HAProxy and a baton proxy, with surge: each new instance starts on a
    /// free port of its host beside the old one and is a new dynamic server on HAProxy; load
    /// through HAProxy fails nothing.
    @Test func surgeAcrossHostsBehindHAProxyFailsNothing() async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let hosts = try await NamespaceHosts.make(count: 3)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(rollout: "max_surge: 1\n  canary: 1\n  observe: 0s", haproxy: haproxy, hosts: hosts)
        try await fleet.rollout().deploy(release: "5.3", resume: false)

        let load = LoadGenerator.start(against: haproxy.endpoint, concurrency: 6, request: translateRequests)
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        let result = await load.stop()
        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(result.total > 50)

        let lb = HAProxyController(runtime: HAProxyRuntime(endpoint: .unix(path: haproxy.socket)), backend: haproxy.backend)
        #expect(try await lb.backends()[lb.description]?.map(\.name) == ["web1-5.4", "web2-5.4", "web3-5.4"])
        #expect(fleet.proxyServesOnly("5.4"))
        // The port 5.3 held was busy when 5.4 started: each host found another one free.
        let driver = FleetDriver(config: fleet.config)
        for node in ["web1", "web2", "web3"] {
            let instances = try await driver.instances(node: node)
            #expect(instances.map(\.release) == ["5.4"])
            #expect(instances.first.map { $0.port != 3000 && (20000..<40000).contains($0.port) } == true, "\(instances)")
        }
        await fleet.cleanup()
    }

    /// A host whose key is not in known_hosts stops the deploy before anything changes, and
    /// the message holds the line to add.
    @Test func anUnknownHostKeyIsRefusedBeforeAnyChange() async throws {
        let hosts = try await NamespaceHosts.make(count: 2)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(hosts: hosts)
        let known = try String(contentsOfFile: hosts.knownHosts, encoding: .utf8).split(separator: "\n")
        try (known.filter { !$0.hasPrefix(hosts.hosts[1].address + " ") }.joined(separator: "\n") + "\n")
            .write(toFile: hosts.knownHosts, atomically: true, encoding: .utf8)

        let error = await #expect(throws: (any Error).self) { try await fleet.rollout().deploy(release: "5.3", resume: false) }
        let message = "\(error.map { "\($0)" } ?? "")"
        #expect(message.contains("web2 (ssh://\(hosts.hosts[1].user)@\(hosts.hosts[1].address))"), "\(message)")
        #expect(message.contains("ssh-keyscan -p 22 \(hosts.hosts[1].address) >> \(hosts.knownHosts)"), "\(message)")
        #expect(try await fleet.journalEvents().isEmpty)
        #expect(fleet.proxy.server.pool.list().isEmpty)
        for host in hosts.hosts {
            #expect(!FileManager.default.fileExists(atPath: "\(host.home)/.baton/translate/run"))
        }
        await fleet.cleanup()
    }

    /// The app on a host dies by itself: the host's supervisor starts it again, and the proxy
    /// takes it back once its checks pass.
    @Test func aCrashedInstanceIsRestartedByItsHostsSupervisor() async throws {
        let hosts = try await NamespaceHosts.make(count: 2)
        defer { hosts.remove() }
        let fleet = try await TestFleet.make(hosts: hosts)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let driver = FleetDriver(config: fleet.config)
        let instance = try #require(try await driver.instances(node: "web1").first)
        let listener = try #require(try await driver.listener(node: "web1", port: 3000))
        let app = try #require(listener.pids.first { $0 != instance.pid })
        #expect(listener.isOwned(by: instance))
        kill(app, SIGKILL)

        let restarted = try await eventually(timeout: .seconds(15)) {
            guard let now = try await driver.instances(node: "web1").first, now.restarts == 1, now.alive else { return false }
            guard let listener = try await driver.listener(node: "web1", port: 3000) else { return false }
            return listener.isOwned(by: now) && !listener.pids.contains(app)
        }
        #expect(restarted)
        #expect(try await driver.instances(node: "web1").first?.lastExit == 137)
        #expect(await eventually(timeout: .seconds(10)) { fleet.proxyServesOnly("5.3") })
        await fleet.cleanup()
    }

    /// A host cut off the network mid-deploy: its step fails within the SSH timeouts, the hosts
    /// already upgraded are rolled back on every proxy, the cut host is named, and once it is
    /// back `--resume` finishes the rollback.
    @Test func aHostCutOffMidDeployIsNamedAndTheRollbackResumesWhenItReturns() async throws {
        let hosts = try await NamespaceHosts.make(count: 3)
        defer { hosts.remove() }
        // The hook runs on this machine, as root: it pulls web2's cable as its turn begins.
        let cut = "hooks:\n  before_node: '[ \"$BATON_NODE-$BATON_RELEASE\" != web2-5.4 ] || ip link set \(hosts.hosts[1].link) down'"
        let fleet = try await TestFleet.make(extra: cut, hosts: hosts)
        try await fleet.rollout().deploy(release: "5.3", resume: false)

        let start = ContinuousClock.now
        let error = await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: "5.4", resume: false) }
        #expect(ContinuousClock.now - start < .seconds(90))
        let message = error?.message ?? ""
        #expect(message.contains("web2 (ssh://\(hosts.hosts[1].user)@\(hosts.hosts[1].address))"), "\(message)")
        #expect(message.contains("did not finish"), "\(message)")
        #expect(message.contains("--resume"), "\(message)")
        // web1 went to 5.4 and back; web3 was never touched (web2 cannot be asked).
        let driver = FleetDriver(config: fleet.config)
        #expect(try await driver.instances(node: "web1").filter(\.alive).map(\.release) == ["5.3"])
        #expect(try await driver.instances(node: "web3").filter(\.alive).map(\.release) == ["5.3"])
        for proxy in fleet.proxies {
            #expect(!proxy.server.pool.list().contains { $0.name.hasSuffix("-5.4") })
        }
        // Status shows the fleet with the cut host named, not an error.
        let status = try await FleetStatus.gather(fleet.rollout())
        #expect(status.nodes.first { $0.name == "web2" }?.unreachable != nil)
        #expect(status.nodes.first { $0.name == "web3" }?.instances.map(\.release) == ["5.3"])
        #expect(status.render().contains("web2       UNREACHABLE: web2 (ssh://"), "\(status.render())")
        #expect(status.render().contains("INTERRUPTED"), "\(status.render())")
        #expect(try await fleet.rollout().journal.history().first?.outcome == .interrupted)

        try hosts.restore(1)
        let resumed = await #expect(throws: RolloutFailure.self) { try await fleet.rollout().deploy(release: String?.none, resume: true) }
        #expect(resumed?.message.contains("rolled back to 5.3") == true, "\(resumed?.message ?? "")")
        let history = try await fleet.rollout().journal.history()
        #expect(history.map(\.outcome) == [.rolledBack, .finished])
        #expect(history.first?.reason?.contains("web2") == true, "\(history)")
        #expect(try await fleet.everyNodeRuns("5.3"))
        #expect(fleet.proxyServesOnly("5.3"))
        await fleet.cleanup()
    }
}
