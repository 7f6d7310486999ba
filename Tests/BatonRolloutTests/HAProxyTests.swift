import BatonCore
import BatonProxy
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// A real HAProxy (Debian's package, started by the test) driven through its Runtime API.
@Suite(.serialized) struct HAProxyTests {
    let health = HealthCheck(interval: .milliseconds(100), timeout: .seconds(1), rise: 2, fall: 2)

    func controller(_ haproxy: LiveHAProxy) -> HAProxyController {
        HAProxyController(runtime: HAProxyRuntime(endpoint: .unix(path: haproxy.socket)), backend: haproxy.backend)
    }

    func servedBy(_ haproxy: LiveHAProxy, path: String = "/") async throws -> String? {
        try await HTTP1Client.send(HTTPRequest(.GET, path), to: haproxy.endpoint, timeout: .seconds(10))[header: "x-served-by"]
    }

    @Test func admitDrainAndRemoveDynamicServers() async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let web1 = try await TestBackend.start(name: "web1")
        let web2 = try await TestBackend.start(name: "web2")
        let lb = controller(haproxy)

        try await lb.admit(backend: "web1-A", address: web1.address, health: health, timeout: .seconds(10))
        try await lb.admit(backend: "web2-A", address: web2.address, health: health, timeout: .seconds(10))
        let listed = try await lb.backends()[lb.description] ?? []
        #expect(listed.map(\.name) == ["web1-A", "web2-A"])
        #expect(listed.allSatisfy { $0.state == .ready && $0.healthy })
        #expect(listed.first?.address == web1.address)
        var seen: Set<String> = []
        for _ in 0..<20 { if let name = try await servedBy(haproxy) { seen.insert(name) } }
        #expect(seen == ["web1", "web2"])

        // A request in flight on the drained server finishes; the drain waits for it.
        let slow = Task { try await HTTP1Client.send(HTTPRequest(.GET, "/?sleep=700"), to: haproxy.endpoint, timeout: .seconds(10)) }
        #expect(await eventually { ((try? await lb.backends()[lb.description]) ?? []).contains { $0.inFlight == 1 } })
        let busy = try #require(try await lb.backends()[lb.description]?.first { $0.inFlight == 1 })
        let drained = try await lb.drain(backend: busy.name, timeout: .seconds(10))
        #expect(drained.count == 1 && drained[0].cut == 0)
        #expect(drained[0].elapsedMilliseconds >= 100)
        #expect(try await slow.value.status == 200)
        #expect(try await lb.backends()[lb.description]?.first { $0.name == busy.name }?.state == .drained)
        let other = busy.name == "web1-A" ? "web2" : "web1"
        for _ in 0..<10 { #expect(try await servedBy(haproxy) == other) }

        // Admitting the drained server again puts it back.
        try await lb.admit(backend: busy.name, address: busy.address, health: health, timeout: .seconds(10))
        #expect(try await lb.backends()[lb.description]?.first { $0.name == busy.name }?.state == .ready)

        try await lb.remove(backend: busy.name)
        #expect(try await lb.backends()[lb.description]?.map(\.name) == [other + "-A"])
        try await lb.remove(backend: busy.name)  // already gone: nothing to do
        let stats = try await lb.stats()
        #expect((stats[other + "-A"]?.requests ?? 0) >= 10)
        await web1.stop()
        await web2.stop()
    }

    @Test func aServerFailingHAProxysChecksIsNotAdmitted() async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let web1 = try await TestBackend.start(name: "web1")
        web1.setHealthy(false)
        let lb = controller(haproxy)
        let error = await #expect(throws: BatonError.self) {
            try await lb.admit(backend: "web1-A", address: web1.address, health: health, timeout: .seconds(1))
        }
        #expect(error?.code == .timeout)
        #expect(error?.message.contains("web1-A did not come up within 1s (check L7STS") == true, "\(error?.message ?? "")")
        await web1.stop()
    }

    @Test func anUnreachableRuntimeAPIFailsTheStepNamingTheSocket() async throws {
        let lb = HAProxyController(runtime: HAProxyRuntime(endpoint: .unix(path: "/tmp/no-such-haproxy.sock")), backend: "app")
        let error = await #expect(throws: BatonError.self) { try await lb.backends() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("/tmp/no-such-haproxy.sock") == true)
    }

    /// `LoadBalancers` completes a step only when every member did: HAProxy and a `baton proxy`
    /// both take the backend, and one member that cannot be reached fails the step.
    @Test func everyLoadBalancerTakesEachStep() async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let proxy = try await LiveProxy.start()
        let web1 = try await TestBackend.start(name: "web1")
        let both = LoadBalancers(targets: [.socket(path: proxy.directory + "/admin.sock"), .haproxy(socket: .unix(path: haproxy.socket), backend: haproxy.backend)])
        try await both.admit(backend: "web1-A", address: web1.address, health: health, timeout: .seconds(10))
        let listed = try await both.backends()
        #expect(listed.count == 2)
        #expect(listed.values.allSatisfy { $0.map(\.name) == ["web1-A"] && $0[0].state == .ready })
        let drained = try await both.drain(backend: "web1-A", timeout: .seconds(5))
        #expect(drained.count == 2 && drained.allSatisfy { $0.cut == 0 })
        try await both.remove(backend: "web1-A")
        #expect(try await both.backends().values.allSatisfy(\.isEmpty))

        let oneGone = LoadBalancers(targets: [.socket(path: proxy.directory + "/admin.sock"), .haproxy(socket: .unix(path: haproxy.directory + "/gone.sock"), backend: "app")])
        let error = await #expect(throws: BatonError.self) {
            try await oneGone.admit(backend: "web1-B", address: web1.address, health: health, timeout: .seconds(5))
        }
        #expect(error?.message.contains("gone.sock") == true, "\(error?.message ?? "")")
        try await proxy.shutdown()
        await web1.stop()
    }

    @Test func namesThatWouldSplitARuntimeCommandAreRefused() async throws {
        let lb = HAProxyController(runtime: HAProxyRuntime(endpoint: .unix(path: "/tmp/no-such-haproxy.sock")), backend: "app")
        for name in ["web1-5.4;shutdown sessions server app/web2-5.4", "web 1", "wéb1", ""] {
            let error = await #expect(throws: BatonError.self) {
                try await lb.admit(backend: name, address: "127.0.0.1:3001", health: health, timeout: .seconds(1))
            }
            #expect(error?.code == .invalidArgument, "\(name)")
        }
        await #expect(throws: BatonError.self) { try await lb.drain(backend: "a;b", timeout: .seconds(1)) }
        await #expect(throws: BatonError.self) { try await lb.remove(backend: "a b") }
    }

    @Test func haproxyErrorsComeBackAsOneLine() async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let lb = HAProxyController(runtime: HAProxyRuntime(endpoint: .unix(path: haproxy.socket)), backend: "nope")
        let error = await #expect(throws: BatonError.self) { try await lb.backends() }
        #expect(error?.message.contains("Can't find backend") == true, "\(error?.message ?? "")")
    }

    /// Four TranslateApp nodes behind `baton proxy` and HAProxy at once, load through HAProxy:
    /// every step waits for both load balancers, and nothing fails; with surge the new
    /// instances are new dynamic servers beside the old ones.
    @Test(arguments: ["max_unavailable: 1\n  canary: 1\n  observe: 0s", "max_surge: 1\n  canary: 1\n  observe: 0s"])
    func rollingDeployBehindHAProxyAndBatonProxyFailsNothing(rollout: String) async throws {
        let haproxy = try await LiveHAProxy.start()
        defer { haproxy.stop() }
        let fleet = try await TestFleet.make(rollout: rollout, haproxy: haproxy)
        try await fleet.rollout().deploy(release: "5.3", resume: false)
        let lb = controller(haproxy)
        #expect(try await lb.backends()[lb.description]?.map(\.name) == (1...4).map { "web\($0)-5.3" })

        let load = LoadGenerator.start(against: haproxy.endpoint, concurrency: 6, request: translateRequests)
        let proxyLoad = LoadGenerator.start(against: fleet.proxy.endpoint, concurrency: 2, request: translateRequests)
        try await fleet.rollout().deploy(release: "5.4", resume: false)
        let result = await load.stop()
        let proxyResult = await proxyLoad.stop()

        #expect(result.failures.isEmpty, "\(result.failures.prefix(5))")
        #expect(proxyResult.failures.isEmpty, "\(proxyResult.failures.prefix(5))")
        #expect(result.total > 100)
        #expect(try await lb.backends()[lb.description]?.map(\.name) == (1...4).map { "web\($0)-5.4" })
        #expect(fleet.proxyServesOnly("5.4"))
        #expect(try await fleet.everyNodeRuns("5.4"))
        await fleet.cleanup()
    }
}
