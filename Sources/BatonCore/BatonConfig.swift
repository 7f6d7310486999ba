import Foundation

/// How long a hook may run before it is killed.
public let DefaultHookTimeout = Duration.seconds(300)

/// `baton.yml`: the service, its proxies and nodes, how to start a release, and the rollout
/// policy. Every problem is reported as one line naming the file, the line and the field.
public struct BatonConfig: Sendable, Equatable {
    public enum ProxyTarget: Sendable, Equatable {
        /// A `baton proxy` reached on its admin Unix socket.
        case socket(path: String)
        /// A `baton proxy` reached on its TCP admin API.
        case tcp(Endpoint, token: String?)
        /// HAProxy, through the Runtime API on its stats socket; the nodes are servers of `backend`.
        case haproxy(socket: Endpoint, backend: String)
    }

    public struct Node: Sendable, Equatable {
        public var name: String
        /// The host it runs on over SSH; nil runs it on this machine (`host: local`).
        public var ssh: SSHTarget?
        public var port: Int

        public init(name: String, ssh: SSHTarget? = nil, port: Int) {
            self.name = name
            self.ssh = ssh
            self.port = port
        }

        /// The address its instances listen on: the SSH host, or loopback for a local node.
        public var address: String { ssh?.host ?? "127.0.0.1" }
        /// Where the node's app is reached on its own port.
        public var endpoint: Endpoint { .tcp(host: address, port: port) }
    }

    /// `host: ssh://user@host[:port]`.
    public struct SSHTarget: Sendable, Equatable, Hashable, CustomStringConvertible {
        public var user: String?
        public var host: String
        public var port: Int

        public init(user: String?, host: String, port: Int = 22) {
            self.user = user
            self.host = host
            self.port = port
        }

        /// Parses `ssh://[user@]host[:port]`; nil when `text` is not that.
        public init?(parsing text: String) {
            guard text.hasPrefix("ssh://") else { return nil }
            var rest = Substring(text.dropFirst(6))
            // ASCII only, and never a leading '-': ssh would read `-F…@host` as an option.
            func plain(_ text: Substring, extra: String) -> Bool {
                guard let first = text.first, first.isASCII, first.isLetter || first.isNumber || first == "_" else { return false }
                return text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || extra.contains($0)) }
            }
            if let at = rest.firstIndex(of: "@") {
                guard plain(rest[..<at], extra: "._-") else { return nil }
                user = String(rest[..<at])
                rest = rest[rest.index(after: at)...]
            }
            port = 22
            if let colon = rest.lastIndex(of: ":") {
                guard let number = Int(rest[rest.index(after: colon)...]), (1...65535).contains(number) else { return nil }
                port = number
                rest = rest[..<colon]
            }
            // A host name or an IPv4 address: no option-like or shell-special characters reach ssh.
            guard plain(rest, extra: ".-") else { return nil }
            host = String(rest)
        }

        /// `user@host` as ssh takes it (the port goes with -p).
        public var destination: String { user.map { "\($0)@\(host)" } ?? host }
        public var description: String { "ssh://\(destination)" + (port == 22 ? "" : ":\(port)") }
    }

    /// How hosts are reached over SSH (baton.yml's `ssh`), for every `ssh://` node.
    public struct SSH: Sendable, Equatable {
        /// A private key file (`-i`); nil uses ssh's defaults and agent.
        public var identityFile: String?
        /// Where host keys are checked; nil uses ssh's (~/.ssh/known_hosts).
        public var knownHosts: String?
        /// The directory on each host holding releases, supervisor state and logs (relative
        /// paths are under the SSH user's home).
        public var directory: String
        /// How long connecting may take; a host that does not answer fails its step after it.
        public var connectTimeout: Duration
        /// How a release reaches a host: rsync when both ends have it (`auto`), or tar over ssh.
        public var transfer: Transfer

        public enum Transfer: String, Sendable, Equatable { case auto, rsync, tar }
    }

    /// How a release is run. A deployment records it with `health`, so a later rollback to
    /// that release runs it as it was deployed, whatever baton.yml says by then.
    public struct Release: Sendable, Equatable, Codable {
        /// Command template; `{release}`, `{port}`, `{node}` and `{dir}` are filled in.
        public var start: String
        public var environment: [String: String]
        public var stopSignal: Int32
        public var stopGrace: Duration
        /// Release directories kept by `baton release add`.
        public var keep: Int
    }

    public struct Health: Sendable, Equatable, Codable {
        /// What the warm-up checks and what every proxy is told to check.
        public var check: HealthCheck
        /// How long a started release may take to pass `rise` checks.
        public var startupGrace: Duration
        /// How long it must stay healthy before it is admitted.
        public var minReady: Duration
    }

    public struct Rollout: Sendable, Equatable {
        public var maxUnavailable: Int
        public var maxSurge: Int
        public var pause: Duration
        public var canary: Int
        public var observe: Duration
        /// Rollback when a new node's 5xx share in the observe window exceeds this.
        public var maxErrorRate: Double
        /// Rollback when a new node's p99 latency in the observe window exceeds this.
        public var maxP99: Duration?
        public var drainTimeout: Duration
        /// Hosts worked on at once within a batch (and when releases are shipped).
        public var maxParallelHosts: Int
    }

    public struct Hooks: Sendable, Equatable {
        public var preDeploy: String?
        public var postDeploy: String?
        public var beforeNode: String?
        public var afterNode: String?
        /// A hook still running after this long is killed and fails its step.
        public var timeout: Duration = DefaultHookTimeout
    }

    /// The pre-flight compatibility check of `baton deploy`.
    public struct Compat: Sendable, Equatable {
        /// The OpenAPI document inside each release directory; checked when both releases have it.
        public var openapi: String
        /// A file inside each release directory holding the version schema the release uses
        /// (`baton migrate complete --fleet` refuses while a node runs the old one).
        public var databaseSchema: String
    }

    public var file: String
    public var service: String
    public var stateDirectory: String
    /// `state: postgres://…` (or BATON_STATE_URL): the journal, history and deploy lock in
    /// PostgreSQL, shared by every machine that deploys; nil keeps them in `stateDirectory`.
    public var stateURL: String?
    public var proxies: [ProxyTarget]
    public var nodes: [Node]
    public var ssh: SSH
    public var release: Release
    public var health: Health
    public var rollout: Rollout
    public var hooks: Hooks
    public var compat: Compat

    /// Reads and validates a config file (relative paths are taken from its directory);
    /// BATON_STATE_URL in `environment` overrides `state`.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> BatonConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.invalidConfiguration, "\(path): cannot read the file; `baton init` writes an example")
        }
        var config = try parse(String(decoding: data, as: UTF8.self), file: path)
        if let url = environment["BATON_STATE_URL"], !url.isEmpty {
            guard isPostgresURL(url) else { throw BatonError(.invalidConfiguration, "BATON_STATE_URL: expected postgres://USER@HOST:PORT/DATABASE") }
            config.stateURL = url
        }
        return config
    }

    static func isPostgresURL(_ text: String) -> Bool {
        guard let components = URLComponents(string: text), ["postgres", "postgresql"].contains(components.scheme ?? ""),
            components.host?.isEmpty == false, components.user?.isEmpty == false
        else { return false }
        return true
    }

    public static func parse(_ text: String, file: String) throws -> BatonConfig {
        let root = try YAMLReader.root(text: text, file: file)
        try root.allowKeys(["service", "state_dir", "state", "proxies", "nodes", "ssh", "release", "health", "rollout", "hooks", "compat"])
        let base = (file as NSString).deletingLastPathComponent
        func resolve(_ path: String) -> String {
            if path.hasPrefix("~") { return (path as NSString).expandingTildeInPath }
            return path.hasPrefix("/") || base.isEmpty ? path : (base as NSString).appendingPathComponent(path)
        }

        let service = try root.requiredString("service", example: "translate")
        let stateDirectory = resolve(try root.string("state_dir") ?? ".baton")
        let stateURL = try root.string("state")
        if let stateURL, !isPostgresURL(stateURL) {
            throw root.error("state", "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or leave it out to keep state in state_dir)")
        }

        guard let proxyList = try root.list("proxies"), !proxyList.isEmpty else {
            throw root.error(nil, "missing 'proxies': a list with at least one {admin_socket: PATH}, {admin_url: HOST:PORT, token: …} or {haproxy: {socket: PATH, backend: NAME}}")
        }
        let proxies = try proxyList.map { proxy -> ProxyTarget in
            try proxy.allowKeys(["admin_socket", "admin_url", "token", "haproxy"])
            if let haproxy = try proxy.child("haproxy") {
                if proxy.has("admin_socket") || proxy.has("admin_url") {
                    throw proxy.error(nil, "one load balancer per entry: haproxy and admin_socket/admin_url go in separate list items")
                }
                try haproxy.allowKeys(["socket", "backend"])
                let socket = try haproxy.requiredString("socket", example: "/run/haproxy/admin.sock")
                // HOST:PORT for a TCP stats socket, else a path (unix:PATH too).
                var endpoint = Endpoint.unix(path: resolve(socket))
                switch try? Endpoint(parsing: socket) {
                case .tcp(let host, let port): endpoint = .tcp(host: host, port: port)
                case .unix(let path): endpoint = .unix(path: resolve(path))
                case nil: break
                }
                let backend = try haproxy.requiredString("backend", example: "app")
                guard !backend.isEmpty, backend.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) else {
                    throw haproxy.error("backend", "expected an HAProxy backend name (letters, digits, '-', '_', '.', ':'), got '\(backend)'")
                }
                return .haproxy(socket: endpoint, backend: backend)
            }
            if let socket = try proxy.string("admin_socket") {
                return .socket(path: resolve(socket))
            }
            guard let url = try proxy.string("admin_url") else {
                throw proxy.error(nil, "expected admin_socket: PATH, admin_url: HOST:PORT or haproxy: {socket: PATH, backend: NAME}")
            }
            let address = url.replacingOccurrences(of: "http://", with: "")
            guard let endpoint = try? Endpoint(parsing: address) else { throw proxy.error("admin_url", "expected HOST:PORT, got '\(url)'") }
            guard let token = try proxy.string("token"), !token.isEmpty else {
                throw proxy.error(nil, "an admin_url needs a token (the proxy refuses TCP admin calls without one)")
            }
            return .tcp(endpoint, token: token)
        }

        for (index, target) in proxies.enumerated() where proxies[..<index].contains(target) {
            throw proxyList[index].error(nil, "the same load balancer is listed twice (as proxies[\(proxies.firstIndex(of: target)!)])")
        }

        guard let nodeList = try root.list("nodes"), !nodeList.isEmpty else {
            throw root.error(nil, "missing 'nodes': a list of {name: web1, host: local, port: 3001}")
        }
        var nodes: [Node] = []
        for reader in nodeList {
            try reader.allowKeys(["name", "host", "port"])
            let name = try reader.requiredString("name", example: "web1")
            guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw reader.error("name", "expected letters, digits, '-' or '_', got '\(name)'")
            }
            if nodes.contains(where: { $0.name == name }) { throw reader.error("name", "'\(name)' is used by another node") }
            let host = try reader.string("host") ?? "local"
            var ssh: SSHTarget?
            if host != "local" {
                guard let target = SSHTarget(parsing: host) else {
                    throw reader.error("host", "expected 'local' or ssh://[user@]host[:port], got '\(host)'")
                }
                ssh = target
            }
            guard let port = try reader.int("port", min: 1, max: 65535) else { throw reader.error(nil, "missing 'port', e.g. port: 3001") }
            let node = Node(name: name, ssh: ssh, port: port)
            if let other = nodes.first(where: { $0.address == node.address && $0.port == port }) {
                throw reader.error("port", "\(port) on \(node.address) is used by node \(other.name)")
            }
            nodes.append(node)
        }

        let sshReader = try root.child("ssh")
        try sshReader?.allowKeys(["identity_file", "known_hosts", "directory", "connect_timeout", "transfer"])
        let transferName = try sshReader?.string("transfer") ?? "auto"
        guard let transfer = SSH.Transfer(rawValue: transferName) else {
            throw sshReader!.error("transfer", "expected auto, rsync or tar, got '\(transferName)'")
        }
        // The service's own directory by default: two services deployed as one user must not
        // see (or prune) each other's instances and releases.
        let remoteDirectory = try sshReader?.string("directory") ?? ".baton/\(service)"
        guard let first = remoteDirectory.first, first != "-", first != "~",
            remoteDirectory.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._/-".contains($0)) })
        else {
            throw sshReader!.error("directory", "expected a path of letters, digits, '.', '_', '/' and '-' (relative paths are under the SSH user's home), got '\(remoteDirectory)'")
        }
        let ssh = SSH(
            identityFile: try sshReader?.string("identity_file").map(resolve),
            knownHosts: try sshReader?.string("known_hosts").map(resolve),
            directory: remoteDirectory,
            connectTimeout: try sshReader?.duration("connect_timeout") ?? .seconds(5),
            transfer: transfer
        )
        if ssh.connectTimeout < .seconds(1) { throw sshReader!.error("connect_timeout", "expected at least 1s (ssh counts whole seconds)") }

        guard let releaseReader = try root.child("release") else {
            throw root.error(nil, "missing 'release' with a start command, e.g. start: \"{dir}/app --port {port}\"")
        }
        try releaseReader.allowKeys(["start", "environment", "stop_signal", "stop_grace", "keep"])
        let start = try releaseReader.requiredString("start", example: "\"{dir}/app --release {release} --port {port}\"")
        guard start.contains("{port}") else { throw releaseReader.error("start", "the command must pass {port} to the app") }
        let signalName = try releaseReader.string("stop_signal") ?? "TERM"
        guard let stopSignal = Self.signals[signalName.uppercased().replacingOccurrences(of: "SIG", with: "")] else {
            throw releaseReader.error("stop_signal", "expected one of \(Self.signals.keys.sorted().joined(separator: ", ")), got '\(signalName)'")
        }
        let environment = try releaseReader.stringMap("environment") ?? [:]
        for key in environment.keys.sorted() {
            guard let first = key.first, first.isASCII, first.isLetter || first == "_",
                key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
            else { throw releaseReader.error("environment", "expected variable names of letters, digits and '_', got '\(key)'") }
        }
        let release = Release(
            start: start,
            environment: environment,
            stopSignal: stopSignal,
            stopGrace: try releaseReader.duration("stop_grace") ?? .seconds(10),
            keep: try releaseReader.int("keep", min: 2) ?? 5
        )

        let healthReader = try root.child("health")
        try healthReader?.allowKeys(["path", "interval", "timeout", "rise", "fall", "startup_grace", "min_ready"])
        let healthPath = try healthReader?.string("path") ?? DefaultHealthCheckPath
        guard healthPath.hasPrefix("/") else { throw healthReader!.error("path", "expected a path starting with '/', got '\(healthPath)'") }
        let health = Health(
            check: HealthCheck(
                path: healthPath,
                interval: try healthReader?.duration("interval") ?? DefaultHealthCheckInterval,
                timeout: try healthReader?.duration("timeout") ?? DefaultHealthCheckTimeout,
                rise: try healthReader?.int("rise", min: 1) ?? DefaultHealthRise,
                fall: try healthReader?.int("fall", min: 1) ?? DefaultHealthFall
            ),
            startupGrace: try healthReader?.duration("startup_grace") ?? .seconds(60),
            minReady: try healthReader?.duration("min_ready") ?? .seconds(1)
        )

        let rolloutReader = try root.child("rollout")
        try rolloutReader?.allowKeys(["max_unavailable", "max_surge", "pause", "canary", "observe", "max_error_rate", "max_p99", "drain_timeout", "max_parallel_hosts"])
        let rollout = Rollout(
            maxUnavailable: try rolloutReader?.int("max_unavailable", min: 1, max: nodes.count) ?? 1,
            maxSurge: try rolloutReader?.int("max_surge", min: 0, max: nodes.count) ?? 0,
            pause: try rolloutReader?.duration("pause") ?? .zero,
            canary: try rolloutReader?.int("canary", min: 0, max: nodes.count) ?? 1,
            observe: try rolloutReader?.duration("observe") ?? .seconds(10),
            maxErrorRate: try rolloutReader?.double("max_error_rate", min: 0, max: 1) ?? 0.01,
            maxP99: try rolloutReader?.duration("max_p99"),
            drainTimeout: try rolloutReader?.duration("drain_timeout") ?? .seconds(30),
            maxParallelHosts: try rolloutReader?.int("max_parallel_hosts", min: 1) ?? 4
        )
        if rollout.maxP99 != nil, proxies.allSatisfy({ if case .haproxy = $0 { true } else { false } }) {
            throw rolloutReader!.error("max_p99", "needs a baton proxy in 'proxies': HAProxy keeps no latency distribution per server")
        }

        let hooksReader = try root.child("hooks")
        try hooksReader?.allowKeys(["pre_deploy", "post_deploy", "before_node", "after_node", "timeout"])
        let hooks = Hooks(
            preDeploy: try hooksReader?.string("pre_deploy"),
            postDeploy: try hooksReader?.string("post_deploy"),
            beforeNode: try hooksReader?.string("before_node"),
            afterNode: try hooksReader?.string("after_node"),
            timeout: try hooksReader?.duration("timeout") ?? DefaultHookTimeout
        )

        let compatReader = try root.child("compat")
        try compatReader?.allowKeys(["openapi", "database_schema"])
        let compat = Compat(
            openapi: try compatReader?.string("openapi") ?? "openapi.yaml",
            databaseSchema: try compatReader?.string("database_schema") ?? "database-schema")

        return BatonConfig(
            file: file, service: service, stateDirectory: stateDirectory, stateURL: stateURL, proxies: proxies, nodes: nodes, ssh: ssh,
            release: release, health: health, rollout: rollout, hooks: hooks, compat: compat
        )
    }

    public static let signals: [String: Int32] = ["TERM": SIGTERM, "INT": SIGINT, "QUIT": SIGQUIT, "HUP": SIGHUP, "USR1": SIGUSR1, "USR2": SIGUSR2]

    /// The example `baton init` writes.
    public static let example = """
        # baton.yml: how `baton deploy` upgrades this service, one server at a time.
        service: translate
        # state_dir: .baton            # releases, journal, lock, logs (default .baton)
        # state: postgres://baton@db.internal:5432/ops   # journal, history and lock shared by
        #                                # every machine that deploys (or BATON_STATE_URL)

        # The load balancers in front of the nodes, all driven in lockstep: `baton proxy`
        # through its admin API, HAProxy through its Runtime API (dynamic servers).
        proxies:
          - admin_socket: .baton/proxy.sock
          # - admin_url: 10.0.0.5:9090  # TCP admin API; needs the proxy's token
          #   token: change-me
          # - haproxy: { socket: /run/haproxy/admin.sock, backend: app }

        # The servers. `host: local` runs the release on this machine; ssh://[user@]host[:port]
        # runs it on that host (the release is shipped there; the host needs sshd and sh).
        nodes:
          - { name: web1, host: local, port: 3001 }
          - { name: web2, host: local, port: 3002 }
          # - { name: app1, host: ssh://deploy@10.0.0.11, port: 3000 }

        # ssh:                            # for ssh:// nodes
        #   identity_file: ~/.ssh/deploy_ed25519
        #   known_hosts: ~/.ssh/known_hosts   # unknown host keys are refused, never trusted
        #   directory: .baton/translate       # on each host, under the user's home (default .baton/SERVICE)
        #   connect_timeout: 5s
        #   transfer: auto                    # rsync when both ends have it, else tar

        release:
          # {release}, {port}, {node} and {dir} (the release directory) are filled in.
          start: "{dir}/TranslateApp --release {release} --port {port}"
          environment: {}
          stop_signal: TERM
          stop_grace: 10s
          keep: 5                        # release directories kept by `baton release add`

        # One health check for the deploy's warm-up and every proxy (each admitted backend
        # carries it), so the two cannot disagree.
        health:
          path: /up
          interval: 500ms
          timeout: 2s
          rise: 2                        # passing checks before a node is healthy
          fall: 3                        # failing checks before a proxy takes it out
          startup_grace: 60s             # how long a release may take to become healthy
          min_ready: 1s                  # healthy this long before it takes traffic

        rollout:
          max_unavailable: 1             # nodes out of rotation at once
          max_surge: 0                   # >0: start the new release beside the old one first
          canary: 1                      # nodes upgraded and observed before the rest
          observe: 10s                   # analysis window after each batch
          max_error_rate: 0.01           # 5xx share of a new node that triggers a rollback
          # max_p99: 500ms               # p99 of a new node that triggers a rollback
          pause: 0s                      # between batches
          drain_timeout: 30s
          max_parallel_hosts: 4          # hosts worked on at once within a batch

        # Before a deploy, the OpenAPI documents of the running and the new release (this path
        # inside each release directory) are compared in both directions; ERR findings refuse
        # the deploy unless --force.
        # compat:
        #   openapi: openapi.yaml
        #   database_schema: database-schema   # holds the version schema the release uses

        # hooks:
        #   pre_deploy: ./scripts/check-migrations.sh
        #   before_node: echo draining $BATON_NODE
        #   after_node: ./scripts/smoke.sh $BATON_NODE_URL
        #   post_deploy: ./scripts/notify.sh $BATON_RELEASE
        #   timeout: 5m                 # a hook still running then is killed (output: .baton/logs/hook-NAME.log)

        """
}
