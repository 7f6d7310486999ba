import BatonCore
import Foundation
import NIOHTTP1

/// A real HAProxy for tests (the Debian package): one frontend on a free loopback port, one
/// backend `app` (leastconn, `option httpchk GET /up`) with no servers, and the Runtime API on a
/// Unix socket at admin level. `stop()` ends it.
public final class LiveHAProxy: Sendable {
    public let directory: String
    public let port: Int
    public let socket: String
    public let backend = "app"
    private let pid: pid_t

    public var endpoint: Endpoint { .tcp(host: "127.0.0.1", port: port) }

    public static func start() async throws -> LiveHAProxy {
        let executable = try find()
        let directory = TemporaryDirectory.make(prefix: "baton-haproxy")
        let port = try LocalPort.free()
        let socket = directory + "/admin.sock"
        let config = """
            global
                stats socket \(socket) mode 600 level admin
                maxconn 2000
            defaults
                mode http
                timeout connect 2s
                timeout client 30s
                timeout server 30s
            frontend web
                bind 127.0.0.1:\(port)
                default_backend app
            backend app
                balance leastconn
                option httpchk GET /up

            """
        try config.write(toFile: directory + "/haproxy.cfg", atomically: true, encoding: .utf8)
        // -db: stay in the foreground, so the pid is HAProxy's own.
        let pid: pid_t
        do {
            pid = try ChildProcess.spawn([executable, "-db", "-f", directory + "/haproxy.cfg"], output: directory + "/haproxy.log", detached: false)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        let proxy = LiveHAProxy(directory: directory, port: port, socket: socket, pid: pid)
        // Up once the socket exists and the frontend answers (503: no server yet); a haproxy
        // that exited (the port taken meanwhile, a bad config) ends the wait at once.
        var status: Int32 = 0
        let ready = await eventually(timeout: .seconds(10)) {
            guard waitpid(pid, &status, WNOHANG) == 0 else { return true }
            guard FileManager.default.fileExists(atPath: socket) else { return false }
            return (try? await HTTP1Client.send(HTTPRequest(.GET, "/"), to: proxy.endpoint, timeout: .seconds(1))) != nil
        }
        guard ready, kill(pid, 0) == 0 else {
            proxy.stop()
            let log = (try? String(contentsOfFile: directory + "/haproxy.log", encoding: .utf8)) ?? ""
            throw BatonError(.unavailable, "haproxy did not start: \(log)")
        }
        return proxy
    }

    private init(directory: String, port: Int, socket: String, pid: pid_t) {
        self.directory = directory
        self.port = port
        self.socket = socket
        self.pid = pid
    }

    public func stop() {
        ChildProcess.terminate(pid)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// haproxy on PATH, else where Debian puts it.
    static func find() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"] {
            if FileManager.default.isExecutableFile(atPath: directory + "/haproxy") { return directory + "/haproxy" }
        }
        throw BatonError(.unavailable, "haproxy not found; install it (apt-get install haproxy) or run scripts/test, which does")
    }
}
