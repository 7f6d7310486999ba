import ArgumentParser
import BatonCore
import Foundation

/// `baton proxy install-service`: a systemd unit that runs this binary as the proxy.
struct ProxyServiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-service",
        abstract: "Write a systemd unit that runs `baton proxy` as a service (and create its user).",
        discussion: """
            The unit runs this binary with the proxy options given after `--`, as a dedicated user, restarted on failure, with the admin socket in /run/baton (reached by root or that user), the backend list saved in /var/lib/baton and logs in /var/log/baton. The rest of the file system is read-only to it: a path option elsewhere (--access-log, --state-file, --admin-socket) is made writable in the unit. SIGTERM drains as `baton proxy` does; the unit waits --shutdown-timeout plus 10 seconds before it kills. Install the binary outside /home and /root first (e.g. /usr/local/bin/baton): the unit cannot see home directories.

            Examples:
              sudo baton proxy install-service -- --listen 0.0.0.0:80 --health-path /healthz
              sudo systemctl daemon-reload && sudo systemctl enable --now baton-proxy
              baton proxy install-service --print -- --listen :8080     # only show the unit
              baton proxy backends --admin-socket /run/baton/proxy.sock list
            """)

    @Option(help: "The unit's name (NAME.service).") var name = "baton-proxy"
    @Option(help: "The user (and group) it runs as; created when missing and run as root.") var user = "baton"
    @Option(help: "Where the unit is written.") var unitDirectory = "/etc/systemd/system"
    @Option(help: "The baton binary the unit runs (default: this one).") var binary: String?
    @Flag(help: "Print the unit instead of writing it.") var print = false
    @Argument(parsing: .postTerminator, help: "`baton proxy` options, after --.") var proxyArguments: [String] = []

    func run() throws {
        do {
            let executable = URL(fileURLWithPath: try binary ?? BuiltProducts.currentExecutable()).standardizedFileURL.path
            let unit = try Self.unit(binary: executable, user: user, proxyArguments: proxyArguments)
            if print { return Swift.print(unit, terminator: "") }
            if getuid() == 0, !Self.userExists(user) { try Self.createUser(user) }
            let path = (unitDirectory as NSString).appendingPathComponent("\(name).service")
            do {
                try unit.write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw BatonError(.invalidArgument, "\(path): cannot write the unit (\(error.localizedDescription)); run as root, or pass --unit-directory")
            }
            Swift.print("wrote \(path)\nstart it: systemctl daemon-reload && systemctl enable --now \(name)")
        } catch let error as BatonError {
            throw ValidationErrorLine(message: error.description)
        }
    }

    /// The unit text. The proxy options are checked as `baton proxy` would check them, so a
    /// typo fails here rather than in a restart loop.
    static func unit(binary: String, user: String, proxyArguments: [String]) throws -> String {
        let proxy: ProxyCommand
        do {
            proxy = try ProxyCommand.parse(proxyArguments)
        } catch {
            throw BatonError(.invalidArgument, "proxy options after --: \(ProxyCommand.message(for: error))")
        }
        for hidden in ["/home/", "/root/", "/run/user/"] where binary.hasPrefix(hidden) {
            throw BatonError(.invalidArgument, "\(binary): the unit cannot run a binary under \(hidden) (ProtectHome); install it first, e.g. sudo install -m 755 \(binary) /usr/local/bin/baton, and run that one")
        }
        var arguments = proxyArguments
        if !proxyArguments.contains(where: { $0.hasPrefix("--admin-socket") }) { arguments += ["--admin-socket", "/run/baton/proxy.sock"] }
        if !proxyArguments.contains(where: { $0.hasPrefix("--state-file") }) { arguments += ["--state-file", "/var/lib/baton/proxy-backends.json"] }
        let stop = proxy.shutdownTimeout.components.seconds + 10
        // ProtectSystem=strict leaves only the unit's own directories writable: a file option
        // elsewhere gets its directory.
        let own = ["/run/baton", "/var/lib/baton", "/var/log/baton"]
        let files = [proxy.accessLog, proxy.stateFile, proxy.admin.adminSocket].compactMap { $0 }.filter { $0 != "-" }
        let writable = Set(files.map { URL(fileURLWithPath: $0, relativeTo: URL(fileURLWithPath: "/var/lib/baton", isDirectory: true)).standardizedFileURL.deletingLastPathComponent().path })
            .filter { directory in !own.contains { directory == $0 || directory.hasPrefix($0 + "/") } }.sorted()
        // Its own group, as useradd --user-group makes it; an existing user without one (nobody)
        // keeps its primary group.
        let group = getgrnam(user) != nil || getpwnam(user) == nil ? user : nil
        var lines = [
            "[Unit]",
            "Description=Baton reverse proxy",
            "After=network-online.target",
            "Wants=network-online.target",
            "",
            "[Service]",
            "# The proxy says when it serves, and which process it is after `baton proxy upgrade`.",
            "Type=notify",
            "NotifyAccess=all",
            "User=\(user)",
        ]
        if let group { lines.append("Group=\(group)") }
        lines += [
            "ExecStart=\(([binary, "proxy"] + arguments).map(quoted).joined(separator: " "))",
            "# SIGHUP reads the TLS certificates again.",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
            "RestartSec=2s",
            "# SIGTERM: stop accepting, let requests in flight finish, exit.",
            "KillSignal=SIGTERM",
            "TimeoutStopSec=\(stop)s",
            "RuntimeDirectory=baton",
            "RuntimeDirectoryMode=0750",
            "StateDirectory=baton",
            "LogsDirectory=baton",
            "WorkingDirectory=/var/lib/baton",
        ]
        lines += writable.map { "ReadWritePaths=\($0)" }
        lines += [
            "LimitNOFILE=1048576",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "NoNewPrivileges=true",
            "ProtectSystem=strict",
            "ProtectHome=true",
            "PrivateTmp=true",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// An ExecStart word: quoted when it must be, with systemd's specifiers (%) and
    /// variables ($) escaped.
    static func quoted(_ word: String) -> String {
        let escaped = word.replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "$", with: "$$")
        guard escaped.contains(where: { $0 == " " || $0 == "\"" || $0 == "\\" || $0 == "'" || $0 == ";" }) || escaped.isEmpty else { return escaped }
        return "\"" + escaped.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    static func userExists(_ user: String) -> Bool { getpwnam(user) != nil }

    static func createUser(_ user: String) throws {
        let (status, output) = try ChildProcess.run(["/usr/sbin/useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/var/lib/baton", "--shell", "/usr/sbin/nologin", user])
        guard status == 0 else { throw BatonError(.invalidArgument, "useradd \(user) failed: \(output.trimmingCharacters(in: .whitespacesAndNewlines))") }
        Swift.print("created system user \(user)")
    }
}
