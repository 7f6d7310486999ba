import Foundation

/// A throwaway PostgreSQL cluster: `initdb` into a directory, `pg_ctl start` on a free port on
/// 127.0.0.1 with its socket in the same directory, stopped and removed by `stop()`. Used by
/// `baton demo` and every test suite that needs a database. PostgreSQL refuses to run as root,
/// so as root the server runs as the `postgres` user (which owns the directory).
public final class PostgresCluster: Sendable {
    public let directory: String
    public let port: Int
    public let user = "baton"
    private let binaries: String
    private let runAs: String?

    /// Where initdb and pg_ctl are: on PATH, or the newest /usr/lib/postgresql/N/bin.
    public static func findBinaries() throws -> String {
        let fixed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let versions = fixed.compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in versions + path where FileManager.default.isExecutableFile(atPath: directory + "/pg_ctl")
            && FileManager.default.isExecutableFile(atPath: directory + "/initdb")
        {
            return directory
        }
        throw BatonError(
            .unavailable,
            "PostgreSQL's initdb and pg_ctl were not found on PATH or under /usr/lib/postgresql; install them with: sudo apt-get install -y postgresql"
        )
    }

    /// Creates and starts a cluster under `parent` (a new directory inside it).
    public static func start(under parent: String, port: Int? = nil) async throws -> PostgresCluster {
        let binaries = try findBinaries()
        let directory = parent + "/pg-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let runAs: String? = getuid() == 0 ? "postgres" : nil
        if let runAs {
            guard let account = getpwnam(runAs) else {
                throw BatonError(.unavailable, "running as root, PostgreSQL needs an unprivileged '\(runAs)' user; install the postgresql package, which creates it")
            }
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
            // The server must be able to reach its directory.
            var parentPath = (directory as NSString).deletingLastPathComponent
            while parentPath != "/" && !parentPath.isEmpty {
                var info = stat()
                if stat(parentPath, &info) == 0 { chmod(parentPath, info.st_mode | 0o011) }
                parentPath = (parentPath as NSString).deletingLastPathComponent
            }
        }
        let port = try port ?? LocalPort.free()
        let cluster = PostgresCluster(directory: directory, port: port, binaries: binaries, runAs: runAs)
        do {
            try cluster.run("initdb", ["-D", directory + "/data", "-U", "baton", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
            try cluster.startServer()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        return cluster
    }

    /// A streaming replica of this cluster (`pg_basebackup -R`) beside it, on its own port;
    /// stop it with `stop()` before this one.
    public func startStandby() throws -> PostgresCluster {
        let parent = (directory as NSString).deletingLastPathComponent
        let standbyDirectory = parent + "/pg-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: standbyDirectory, withIntermediateDirectories: true)
        if let runAs, let account = getpwnam(runAs) { chown(standbyDirectory, account.pointee.pw_uid, account.pointee.pw_gid) }
        let standby = PostgresCluster(directory: standbyDirectory, port: try LocalPort.free(), binaries: binaries, runAs: runAs)
        do {
            try run("pg_basebackup", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-D", standbyDirectory + "/data", "-R", "-X", "stream", "--no-sync"])
            try standby.startServer()
        } catch {
            standby.stop()
            throw error
        }
        return standby
    }

    private func startServer() throws {
        try run("pg_ctl", [
            "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "30",
            "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        ])
    }

    private init(directory: String, port: Int, binaries: String, runAs: String?) {
        self.directory = directory
        self.port = port
        self.binaries = binaries
        self.runAs = runAs
    }

    /// `postgres://baton@127.0.0.1:PORT/DATABASE`
    public func url(database: String = "postgres") -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL through psql as the cluster's superuser; returns its output.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc", sql])
    }

    /// `pg_dump` of one database (schema and data), to prove a failed step changed nothing.
    public func dump(database: String = "postgres") throws -> String {
        // Newer pg_dump brackets its output with a random \restrict key; that is not content.
        try run("pg_dump", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", database, "--no-owner"])
            .split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }

    /// Stops the server at once and removes the directory.
    public func stop() {
        _ = try? run("pg_ctl", ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    private func run(_ tool: String, _ arguments: [String]) throws -> String {
        let path = FileManager.default.isExecutableFile(atPath: binaries + "/" + tool) ? binaries + "/" + tool : "/usr/bin/" + tool
        let command = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", path] } ?? [path]
        let (status, output) = try ChildProcess.run(command + arguments)
        let text = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0 else {
            let lines = text.split(separator: "\n").map(String.init)
            let reason = lines.first { $0.contains("ERROR") || $0.contains("FATAL") } ?? lines.last ?? "no output"
            throw BatonError(.unavailable, "\(tool) failed (status \(status)): \(reason); see \(directory)")
        }
        return text
    }
}
