import BatonCore
import Foundation
import Testing

@Suite struct BatonConfigTests {
    let valid = """
        service: translate
        proxies:
          - admin_socket: run/proxy.sock
        nodes:
          - { name: web1, port: 3001 }
          - { name: web2, host: local, port: 3002 }
        release:
          start: "{dir}/app --port {port}"
          stop_grace: 5s
        rollout:
          max_unavailable: 2
          observe: 2s
          max_p99: 300ms
        """

    @Test func validFileParsesWithDefaults() throws {
        let config = try BatonConfig.parse(valid, file: "/srv/app/baton.yml")
        #expect(config.nodes.map(\.name) == ["web1", "web2"])
        #expect(config.proxies == [.socket(path: "/srv/app/run/proxy.sock")])
        #expect(config.stateDirectory == "/srv/app/.baton")
        #expect(config.release.stopGrace == .seconds(5))
        #expect(config.rollout.maxUnavailable == 2)
        #expect(config.rollout.maxP99 == .milliseconds(300))
        #expect(config.health.check.path == "/up")
        #expect(config.health.check.rise == 2)
    }

    @Test func haproxyTargetsParse() throws {
        let text = valid.replacingOccurrences(
            of: "  - admin_socket: run/proxy.sock",
            with: "  - admin_socket: run/proxy.sock\n  - haproxy: { socket: run/haproxy.sock, backend: app }\n  - haproxy: { socket: '127.0.0.1:9999', backend: api.v2 }"
        )
        let config = try BatonConfig.parse(text, file: "/srv/app/baton.yml")
        #expect(config.proxies == [
            .socket(path: "/srv/app/run/proxy.sock"),
            .haproxy(socket: .unix(path: "/srv/app/run/haproxy.sock"), backend: "app"),
            .haproxy(socket: .tcp(host: "127.0.0.1", port: 9999), backend: "api.v2"),
        ])
    }

    @Test func sshNodesParse() throws {
        let text = """
            service: x
            proxies: [{admin_socket: a}]
            nodes:
              - {name: a, host: 'ssh://deploy@10.0.0.11', port: 3000}
              - {name: b, host: 'ssh://app-2.internal:2222', port: 3000}
              - {name: c, port: 3000}
            ssh:
              identity_file: keys/deploy
              known_hosts: ~/.ssh/fleet_hosts
              directory: /srv/baton
              connect_timeout: 3s
              transfer: tar
            release: {start: '{port}'}
            rollout: {max_parallel_hosts: 2}
            """
        let config = try BatonConfig.parse(text, file: "/srv/app/baton.yml")
        #expect(config.nodes.map(\.ssh) == [
            BatonConfig.SSHTarget(user: "deploy", host: "10.0.0.11"), BatonConfig.SSHTarget(user: nil, host: "app-2.internal", port: 2222), nil,
        ])
        #expect(config.nodes.map(\.endpoint.description) == ["10.0.0.11:3000", "app-2.internal:3000", "127.0.0.1:3000"])
        #expect(config.nodes[1].ssh?.description == "ssh://app-2.internal:2222")
        #expect(config.ssh.identityFile == "/srv/app/keys/deploy")
        #expect(config.ssh.knownHosts == NSHomeDirectory() + "/.ssh/fleet_hosts")
        #expect(config.ssh.directory == "/srv/baton")
        #expect(config.ssh.connectTimeout == .seconds(3))
        #expect(config.ssh.transfer == .tar)
        #expect(config.rollout.maxParallelHosts == 2)
    }

    @Test func theExampleParses() throws {
        let config = try BatonConfig.parse(BatonConfig.example, file: "baton.yml")
        #expect(config.nodes.count == 2)
    }

    @Test(arguments: [
        ("service: x\nproxies: [{admin_socket: a}]\nnodes:\n  - {name: web1, prot: 3001}\nrelease: {start: '{port}'}\n",
         "baton.yml:4: nodes[0].prot: unknown field; expected one of name, host, port"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes:\n  - {name: web1}\nrelease: {start: '{port}'}\n",
         "baton.yml:4: nodes[0]: missing 'port', e.g. port: 3001"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes:\n  - {name: web1, port: 1}\n  - {name: web1, port: 2}\nrelease: {start: '{port}'}\n",
         "baton.yml:5: nodes[1].name: 'web1' is used by another node"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\nrollout:\n  max_unavailable: two\n",
         "baton.yml:6: rollout.max_unavailable: expected a whole number from 1 to 1, got 'two'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\nhealth:\n  interval: soon\n",
         "baton.yml:6: health.interval: expected a duration such as 500ms, 30s or 2m, got 'soon'"),
        ("service: x\nproxies: [{admin_url: '127.0.0.1:9090'}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0]: an admin_url needs a token (the proxy refuses TCP admin calls without one)"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: 'app'}\n",
         "baton.yml:4: release.start: the command must pass {port} to the app"),
        ("service: x\nnodes: [{name: w, port: 1}]\n",
         "baton.yml:1: (top level): missing 'proxies': a list with at least one {admin_socket: PATH}, {admin_url: HOST:PORT, token: …} or {haproxy: {socket: PATH, backend: NAME}}"),
        ("service: x\nproxies: [{haproxy: {socket: /run/h.sock}}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0].haproxy: missing 'backend', e.g. backend: app"),
        ("service: x\nproxies: [{haproxy: {socket: /run/h.sock, backend: 'my app'}}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0].haproxy.backend: expected an HAProxy backend name (letters, digits, '-', '_', '.', ':'), got 'my app'"),
        ("service: x\nproxies: [{haproxy: {socket: /run/h.sock, backend: app, check: yes}}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0].haproxy.check: unknown field; expected one of socket, backend"),
        ("service: x\nproxies: [{haproxy: /run/h.sock}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0].haproxy: expected a mapping"),
        ("service: x\nproxies: [{admin_socket: a, haproxy: {socket: /h.sock, backend: app}}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: proxies[0]: one load balancer per entry: haproxy and admin_socket/admin_url go in separate list items"),
        ("service: x\nproxies:\n  - haproxy: {socket: /h.sock, backend: app}\n  - haproxy: {socket: 'unix:/h.sock', backend: app}\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:4: proxies[1]: the same load balancer is listed twice (as proxies[0])"),
        ("service: x\nproxies: [{haproxy: {socket: /h.sock, backend: app}}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\nrollout:\n  max_p99: 300ms\n",
         "baton.yml:6: rollout.max_p99: needs a baton proxy in 'proxies': HAProxy keeps no latency distribution per server"),
        ("- just\n- a list\n", "baton.yml:1: expected a mapping of settings at the top level"),
        ("service: [unclosed\n", "baton.yml: not valid YAML: line 2, column 1: did not find expected ',' or ']'"),
        ("servce: x\n", "baton.yml:1: servce: unknown field; expected one of service, state_dir, state, proxies, nodes, ssh, release, health, rollout, hooks, compat"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, host: 10.0.0.5, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:3: nodes[0].host: expected 'local' or ssh://[user@]host[:port], got '10.0.0.5'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, host: 'ssh://me@-oProxyCommand=x', port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:3: nodes[0].host: expected 'local' or ssh://[user@]host[:port], got 'ssh://me@-oProxyCommand=x'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, host: 'ssh://h:70000', port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:3: nodes[0].host: expected 'local' or ssh://[user@]host[:port], got 'ssh://h:70000'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes:\n  - {name: a, host: 'ssh://h1', port: 3000}\n  - {name: b, host: 'ssh://u@h1:2222', port: 3000}\nrelease: {start: '{port}'}\n",
         "baton.yml:5: nodes[1].port: 3000 on h1 is used by node a"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nssh:\n  transfer: scp\nrelease: {start: '{port}'}\n",
         "baton.yml:5: ssh.transfer: expected auto, rsync or tar, got 'scp'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, host: 'ssh://-Fx@h', port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:3: nodes[0].host: expected 'local' or ssh://[user@]host[:port], got 'ssh://-Fx@h'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nssh:\n  directory: 'srv/$(reboot)'\nrelease: {start: '{port}'}\n",
         "baton.yml:5: ssh.directory: expected a path of letters, digits, '.', '_', '/' and '-' (relative paths are under the SSH user's home), got 'srv/$(reboot)'"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}', environment: {'-i': x}}\n",
         "baton.yml:4: release.environment: expected variable names of letters, digits and '_', got '-i'"),
        ("service: x\nstate: mysql://db/ops\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\n",
         "baton.yml:2: state: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or leave it out to keep state in state_dir)"),
        ("service: x\nproxies: [{admin_socket: a}]\nnodes: [{name: w, port: 1}]\nrelease: {start: '{port}'}\nrollout:\n  max_parallel_hosts: 0\n",
         "baton.yml:6: rollout.max_parallel_hosts: expected a whole number of 1 or more, got '0'"),
    ])
    func badFilesGiveOneLineErrors(text: String, expected: String) {
        do {
            _ = try BatonConfig.parse(text, file: "baton.yml")
            Issue.record("expected an error: \(expected)")
        } catch let error as BatonError {
            #expect(error.message == expected)
            #expect(!error.message.contains("\n"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
