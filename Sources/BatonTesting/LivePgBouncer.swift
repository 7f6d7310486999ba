import BatonCore
import Foundation

/// A real PgBouncer for tests (the Debian package) in transaction pooling mode with one server
/// connection per user and database, so clients of one user share it and would see each
/// other's session settings. `trust` auth for the listed users. `stop()` ends it.
public final class LivePgBouncer: Sendable {
    public let directory: String
    public let port: Int
    private let pid: pid_t

    /// Pools `database` of the PostgreSQL on 127.0.0.1:`serverPort` for `users`.
    public static func start(users: [String], database: String, serverPort: Int) async throws -> LivePgBouncer {
        let executable = try find()
        let directory = TemporaryDirectory.make(prefix: "baton-pgbouncer")
        let port = try LocalPort.free()
        let config = """
            [databases]
            \(database) = host=127.0.0.1 port=\(serverPort) dbname=\(database)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(directory)/users.txt
            pool_mode = transaction
            default_pool_size = 1
            max_client_conn = 100
            ignore_startup_parameters = extra_float_digits
            logfile = \(directory)/pgbouncer.log

            """
        try config.write(toFile: directory + "/pgbouncer.ini", atomically: true, encoding: .utf8)
        try users.map { "\"\($0)\" \"\"" }.joined(separator: "\n").appending("\n").write(toFile: directory + "/users.txt", atomically: true, encoding: .utf8)
        // PgBouncer will not run as root; setpriv execs it as postgres (no fork: the pid is its).
        var command = [executable, directory + "/pgbouncer.ini"]
        if getuid() == 0, let account = getpwnam("postgres") {
            chown(directory, account.pointee.pw_uid, account.pointee.pw_gid)
            command = ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"] + command
        }
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn(command, output: directory + "/stdout.log", detached: false)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let bouncer = LivePgBouncer(directory: directory, port: port, pid: pid)
        var status: Int32 = 0
        let ready = await eventually(timeout: .seconds(10)) {
            guard waitpid(pid, &status, WNOHANG) == 0 else { return true }
            return ((try? String(contentsOfFile: directory + "/pgbouncer.log", encoding: .utf8)) ?? "").contains("process up")
        }
        guard ready, kill(pid, 0) == 0 else {
            let log = ((try? String(contentsOfFile: directory + "/pgbouncer.log", encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: directory + "/stdout.log", encoding: .utf8)) ?? "")
            bouncer.stop()
            throw BatonError(.unavailable, "pgbouncer did not start: \(log)")
        }
        return bouncer
    }

    private init(directory: String, port: Int, pid: pid_t) {
        self.directory = directory
        self.port = port
        self.pid = pid
    }

    /// `postgres://USER@127.0.0.1:PORT/DATABASE` through the pooler.
    public func url(user: String, database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    public func stop() {
        ChildProcess.terminate(pid)
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func find() throws -> String {
        for path in ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw BatonError(.unavailable, "pgbouncer not found; install it (apt-get install pgbouncer) or run scripts/test, which does")
    }
}
