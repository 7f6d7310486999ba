import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import Testing

/// What a team installing Baton relies on: `--version` everywhere it is promised, and the
/// systemd unit `baton proxy install-service` writes.
@Suite struct ShippingTests {
    @Test func versionFromTheCommandLineTheAdminAPIAndMetrics() async throws {
        let run = try BatonCLI.run(["--version"])
        #expect(run.status == 0)
        #expect(run.output.trimmingCharacters(in: .whitespacesAndNewlines) == BatonVersion.description)
        #expect(BatonVersion.description.firstMatch(of: #/^\d+\.\d+\.\d+( \([0-9a-f]{12}\))?$/#) != nil, "\(BatonVersion.description)")
        // Built inside a git checkout, the commit is known.
        let repository = BuiltProducts.packageRoot()
        if FileManager.default.fileExists(atPath: repository + "/.git/HEAD") {
            #expect(BatonVersion.commit?.count == 40, "\(BatonVersion.commit ?? "no commit")")
        }

        let proxy = try await LiveProxy.start()
        let version = try await proxy.admin.raw(.GET, "/version")
        let reported = try JSONDecoder().decode([String: String].self, from: Data(version.bodyString.utf8))
        #expect(reported == ["version": BatonVersion.number, "commit": BatonVersion.commit ?? ""])
        let metrics = try await proxy.admin.metrics()
        #expect(metrics.contains(#"baton_proxy_build_info{version="\#(BatonVersion.number)",commit="\#(BatonVersion.commit ?? "")"} 1"#), "\(metrics)")
        try await proxy.shutdown()
    }

    /// The unit runs the proxy as its own unprivileged user: accepting clients and checking
    /// backends must need no privilege (a socket option at the wrong level, SO_DEBUG, once made
    /// every accepted connection and every health check fail for anyone but root).
    @Test(.enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "switching users needs root"))
    func proxyServesAsAnUnprivilegedUser() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-nobody")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A copy the user can reach wherever the checkout lives.
        let binary = directory + "/baton"
        try FileManager.default.copyItem(atPath: try BuiltProducts.path("baton"), toPath: binary)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: binary)

        let backend = try await TestBackend.start(name: "app")
        let port = try LocalPort.free()
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        proxy.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", binary, "proxy", "--listen", "127.0.0.1:\(port)",
                           "--admin-socket", directory + "/admin.sock", "--state-file", directory + "/backends.json",
                           "--backend", "app=\(backend.address)", "--threads", "1", "--max-hold", "2s"]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        defer { if proxy.isRunning { proxy.terminate(); proxy.waitUntilExit() } }
        // 200 means the connection was accepted and a health check passed (else the request is
        // held and refused).
        let served = await eventually(timeout: .seconds(15)) {
            (try? await HTTP1Client.send(HTTPRequest(.GET, "/"), to: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(4)))?.status == 200
        }
        #expect(served, "the proxy running as nobody never served a request")
        #expect(backend.requestsServed > 0)
        await backend.stop()
    }

    @Test func serviceUnitRunsThisBinaryAsItsOwnUser() throws {
        let directory = TemporaryDirectory.make(prefix: "baton-unit")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = try BuiltProducts.path("baton")
        let printed = try BatonCLI.run(["proxy", "install-service", "--print", "--", "--listen", "0.0.0.0:8080", "--shutdown-timeout", "20s", "--trusted-proxy", "10.0.0.0/8"])
        #expect(printed.status == 0, "\(printed.output)")
        let lines = Set(printed.output.split(separator: "\n").map(String.init))
        for expected in [
            "ExecStart=\(binary) proxy --listen 0.0.0.0:8080 --shutdown-timeout 20s --trusted-proxy 10.0.0.0/8 --admin-socket /run/baton/proxy.sock --state-file /var/lib/baton/proxy-backends.json",
            "Type=notify", "NotifyAccess=all", "ExecReload=/bin/kill -HUP $MAINPID", "User=baton", "Group=baton", "Restart=on-failure", "KillSignal=SIGTERM", "TimeoutStopSec=30s", "RuntimeDirectory=baton",
            "StateDirectory=baton", "LimitNOFILE=1048576", "WantedBy=multi-user.target",
        ] {
            #expect(lines.contains(expected), "missing \(expected)")
        }

        let written = try BatonCLI.run(["proxy", "install-service", "--unit-directory", directory, "--user", "nobody", "--name", "edge", "--", "--listen", "127.0.0.1:8080"])
        #expect(written.status == 0, "\(written.output)")
        let path = directory + "/edge.service"
        let unit = try String(contentsOfFile: path, encoding: .utf8)
        #expect(unit.contains("User=nobody\n") && unit.hasPrefix("[Unit]\n"))
        #expect(!unit.contains("Group="), "nobody has no group of its name: its own primary group stays")
        // Sections and keys as systemd reads them: systemd-analyze where it is installed, a
        // structural check everywhere.
        var section = ""
        for line in unit.split(separator: "\n") where !line.hasPrefix("#") {
            if line.hasPrefix("[") { section = String(line); continue }
            #expect(line.contains("=") && !section.isEmpty, "\(line)")
        }
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let (status, output) = try ChildProcess.run(["/usr/bin/systemd-analyze", "verify", path])
            #expect(status == 0, "\(output)")
        }

        // ProtectSystem=strict: a file option outside the unit's directories gets its directory.
        let logged = try BatonCLI.run(["proxy", "install-service", "--print", "--binary", "/usr/local/bin/baton", "--", "--access-log", "/srv/logs/access.log"])
        #expect(logged.output.contains("\nLogsDirectory=baton\n") && logged.output.contains("\nReadWritePaths=/srv/logs\n"), "\(logged.output)")
        let home = try BatonCLI.run(["proxy", "install-service", "--print", "--binary", "/root/baton"])
        #expect(home.status != 0 && home.output.contains("/root/baton: the unit cannot run a binary under /root/"), "\(home.output)")

        let typo = try BatonCLI.run(["proxy", "install-service", "--print", "--", "--lisen", ":80"])
        #expect(typo.status != 0)
        #expect(typo.output.hasPrefix("Error: proxy options after --: "), "\(typo.output)")
    }

    /// Run as root for a user that does not exist: the user and its group are created (and
    /// removed here afterwards).
    @Test(.enabled(if: getuid() == 0, "useradd needs root")) func serviceUserIsCreatedWhenMissing() throws {
        let user = "baton-t\(UInt16.random(in: 1000...9999))"
        let directory = TemporaryDirectory.make(prefix: "baton-unit")
        defer {
            _ = try? ChildProcess.run(["/usr/sbin/userdel", user])
            try? FileManager.default.removeItem(atPath: directory)
        }
        let run = try BatonCLI.run(["proxy", "install-service", "--unit-directory", directory, "--user", user, "--binary", "/usr/local/bin/baton"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.hasPrefix("created system user \(user)\n"), "\(run.output)")
        #expect(getpwnam(user) != nil && getgrnam(user) != nil)
        #expect(try String(contentsOfFile: directory + "/baton-proxy.service", encoding: .utf8).contains("User=\(user)\nGroup=\(user)\n"))
    }
}
