import BatonCore
import BatonTesting
import Foundation
import Testing

/// scripts/dist's binary on a host without Swift: a chroot holding the binary and only the
/// system libraries `ldd` names, none from a Swift toolchain. It prints its version, runs the
/// proxy and passes a request to a backend outside.
@Suite(.serialized) struct StaticBinaryTests {
    static let repository = BuiltProducts.packageRoot()

    @Test(.enabled(if: getuid() == 0, "chroot needs root"), .timeLimit(.minutes(40)))
    func distBinaryRunsWithoutTheToolchain() async throws {
        let (built, log, _) = try await ChildProcess.run(["/bin/sh", "-c", "cd \"$1\" && scripts/dist 2>&1", "dist", Self.repository], timeout: .seconds(2400))
        try #require(built == 0, "\(log.suffix(2000))")
        let name = "baton-\(BatonVersion.number)-linux-\(try Self.machine())"
        let tarball = "\(Self.repository)/dist/\(name).tar.gz"
        let (checked, checkOutput) = try ChildProcess.run(["/bin/sh", "-c", "cd \"$1\" && sha256sum -c \"$2.sha256\"", "sha", Self.repository + "/dist", name + ".tar.gz"])
        #expect(checked == 0, "\(checkOutput)")

        let root = TemporaryDirectory.make(prefix: "baton-chroot")
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try ChildProcess.run(["/usr/bin/tar", "-xzf", tarball, "-C", root]).status == 0)
        let binary = "\(root)/\(name)/baton"
        let (_, libraries) = try ChildProcess.run(["/usr/bin/ldd", binary])
        #expect(!libraries.contains("swift"), "linked against the toolchain: \(libraries)")
        // Only the system libraries it names, each at its own path.
        for path in libraries.split(separator: "\n").compactMap({ line in line.split(whereSeparator: \.isWhitespace).first { $0.hasPrefix("/") }.map(String.init) }) {
            try FileManager.default.createDirectory(atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            // The file itself, not a symlink that points outside the chroot.
            try FileManager.default.copyItem(atPath: URL(fileURLWithPath: path).resolvingSymlinksInPath().path, toPath: root + path)
        }
        for directory in ["/dev", "/tmp", "/proc"] { try FileManager.default.createDirectory(atPath: root + directory, withIntermediateDirectories: true) }
        // A host has /proc (the Swift runtime reads a static binary's arguments there).
        #expect(try ChildProcess.run(["/usr/bin/mount", "-t", "proc", "proc", root + "/proc"]).status == 0)
        defer { _ = try? ChildProcess.run(["/usr/bin/umount", "-l", root + "/proc"]) }
        // Character devices 1:3 and 1:9 (makedev is a macro Swift does not see).
        #expect(mknod(root + "/dev/null", S_IFCHR | 0o666, (1 << 8) | 3) == 0)
        #expect(mknod(root + "/dev/urandom", S_IFCHR | 0o666, (1 << 8) | 9) == 0)

        let version = try await ChildProcess.run(["/usr/sbin/chroot", root, "/\(name)/baton", "--version"], timeout: .seconds(30))
        #expect(version.status == 0, "\(version.errors)")
        #expect(version.output.hasPrefix(BatonVersion.number), "\(version.output)")
        let commit = try #require(BatonVersion.commit, "a checkout's commit")
        #expect(version.output.contains(String(commit.prefix(12))), "the commit is stamped in: \(version.output)")

        let backend = try await TestBackend.start(name: "app")
        let port = try LocalPort.free()
        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/sbin/chroot")
        proxy.arguments = [root, "/\(name)/baton", "proxy", "--listen", "127.0.0.1:\(port)", "--admin-socket", "/tmp/admin.sock",
                           "--state-file", "/tmp/backends.json", "--backend", "app=\(backend.address)", "--threads", "1"]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        let started = ContinuousClock.now
        try proxy.run()
        defer { if proxy.isRunning { proxy.terminate(); proxy.waitUntilExit() } }
        let accepting = await eventually(timeout: .seconds(10)) {
            guard let connection = try? await RawConnection.connect(to: .tcp(host: "127.0.0.1", port: port), reading: false) else { return false }
            await connection.close()
            return true
        }
        try #require(accepting, "the proxy in the chroot never accepted a connection")
        let startup = ContinuousClock.now - started
        print("static binary: exec to accepting connections in \(startup)")
        #expect(await eventually(timeout: .seconds(10)) {
            (try? await HTTP1Client.send(HTTPRequest(.GET, "/"), to: .tcp(host: "127.0.0.1", port: port), timeout: .seconds(2)))?.status == 200
        })
        #expect(backend.requestsServed > 0)
        proxy.terminate()
        proxy.waitUntilExit()
        #expect(proxy.terminationStatus == 0, "SIGTERM drains and exits cleanly")
        await backend.stop()
    }

    static func machine() throws -> String {
        try ChildProcess.run(["/usr/bin/uname", "-m"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
