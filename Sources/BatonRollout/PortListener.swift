import Foundation

/// Who listens on a TCP port: the processes holding the listening socket, their sessions and
/// what they run. An instance owns the port when one of them is it or runs in its session (an
/// app that forks workers, or runs under the supervisor, keeps its session).
public struct PortListener: Sendable, Equatable, Codable {
    public var port: Int
    public var pids: [Int32]
    public var sessions: [Int32]
    /// The first holder's command line, for messages.
    public var command: String

    public init(port: Int, pids: [Int32], sessions: [Int32], command: String) {
        self.port = port
        self.pids = pids
        self.sessions = sessions
        self.command = command
    }

    public func isOwned(by instance: NodeInstance) -> Bool {
        pids.contains(instance.pid) || sessions.contains(instance.pid)
    }

    /// "pid 4242 (python3 -m http.server 3001)", or the port alone when no process could be
    /// seen (another user's, without the right to look).
    public var holder: String {
        guard let pid = pids.first else { return "a process this user cannot see" }
        return "pid \(pid) (\(command.isEmpty ? "?" : command))"
    }

    /// This machine's listener on `port`, from /proc: nil when nothing listens there.
    public static func local(port: Int) -> PortListener? {
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, fields[3] == "0A",
                    let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port
                else { continue }
                inodes.insert(String(fields[9]))
            }
        }
        guard !inodes.isEmpty else { return nil }
        let targets = Set(inodes.map { "socket:[\($0)]" })
        var pids: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry) else { continue }
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry)/fd")) ?? []
            if fds.contains(where: { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/fd/\($0)")).map(targets.contains) ?? false }) {
                pids.append(pid)
            }
        }
        pids.sort()
        return PortListener(
            port: port, pids: pids, sessions: Array(Set(pids.compactMap(session(of:)))).sorted(),
            command: pids.first.map(commandLine(of:)) ?? ""
        )
    }

    /// The session id: field 6 of /proc/PID/stat, counted after the command's closing ')'.
    static func session(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 3 ? Int32(fields[3]) : nil
    }

    static func commandLine(of pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        let words = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return String(words.joined(separator: " ").prefix(120))
    }
}
