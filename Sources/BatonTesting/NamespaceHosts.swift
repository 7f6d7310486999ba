import BatonCore
import Foundation

/// Real hosts for fleet tests on one machine: each host is a network namespace with its own
/// address (a veth pair to this namespace), its own sshd, and its own user and home directory,
/// so an app listens on the same port on every host, as on a real fleet. Needs root (CI runs
/// as root). `remove()` kills every process in the namespaces and of the users, and deletes the
/// namespaces, links and users; a fleet left by a killed test run is swept by the next `make`.
public final class NamespaceHosts: Sendable {
    public struct Host: Sendable {
        public var namespace: String
        /// The host's address, reached from this namespace through the veth pair.
        public var address: String
        public var user: String
        public var home: String
        /// The veth end in this namespace: down cuts the host off.
        public var link: String
        public var sshdLog: String
    }

    public let hosts: [Host]
    public let directory: String
    /// The client key every host's user accepts.
    public let identityFile: String
    /// Every host's key, as ssh's known_hosts wants them.
    public let knownHosts: String

    /// Names start with this, so leftovers can be found and swept.
    static let prefix = "btn"

    /// Root, sshd and iproute2 present: the namespace fleet can be built here.
    public static var available: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
    }

    public static func make(count: Int) async throws -> NamespaceHosts {
        sweep()
        // One /24 per fleet, picked at random from 10.213.1–250: two fleets never share one
        // because the namespace names carry it and a taken one is skipped.
        let taken = try run(["/usr/sbin/ip", "netns", "list"])
        guard let fleet = (1...250).shuffled().first(where: { !taken.contains("\(prefix)\($0)h") }) else {
            throw BatonError(.unavailable, "no free namespace fleet number")
        }
        let directory = "/tmp/baton-hosts-\(fleet)"
        let identity = directory + "/client_ed25519"
        var hosts: [Host] = []
        var knownHosts = ""
        do {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "baton-test", "-f", identity])
            try FileManager.default.copyItem(atPath: identity + ".pub", toPath: directory + "/authorized_keys")
            chmod(directory + "/authorized_keys", 0o644)
            for index in 1...count {
                let name = "\(prefix)\(fleet)h\(index)"
                let address = "10.213.\(fleet).\(index * 4 + 2)"
                let host = Host(
                    namespace: name, address: address, user: name, home: "\(directory)/\(name)", link: "\(name)o",
                    sshdLog: "\(directory)/\(name)-sshd.log"
                )
                hosts.append(host)
                try setUp(host, outside: "10.213.\(fleet).\(index * 4 + 1)", directory: directory)
                let key = try String(contentsOfFile: "\(host.home).hostkey.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
                knownHosts += "\(address) \(key)\n"
            }
            try knownHosts.write(toFile: directory + "/known_hosts", atomically: true, encoding: .utf8)
            for host in hosts { try await waitForSSH(host) }
        } catch {
            NamespaceHosts(hosts: hosts, directory: directory, identityFile: identity, knownHosts: directory + "/known_hosts").remove()
            throw error
        }
        return NamespaceHosts(hosts: hosts, directory: directory, identityFile: identity, knownHosts: directory + "/known_hosts")
    }

    private init(hosts: [Host], directory: String, identityFile: String, knownHosts: String) {
        self.hosts = hosts
        self.directory = directory
        self.identityFile = identityFile
        self.knownHosts = knownHosts
    }

    private static func setUp(_ host: Host, outside: String, directory: String) throws {
        let ns = host.namespace
        _ = try run(["/usr/sbin/ip", "netns", "add", ns])
        _ = try run(["/usr/sbin/ip", "link", "add", host.link, "type", "veth", "peer", "name", "\(ns)i"])
        _ = try run(["/usr/sbin/ip", "link", "set", "\(ns)i", "netns", ns])
        _ = try run(["/usr/sbin/ip", "addr", "add", "\(outside)/30", "dev", host.link])
        _ = try run(["/usr/sbin/ip", "link", "set", host.link, "up"])
        _ = try run(["/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/ip", "addr", "add", "\(host.address)/30", "dev", "\(ns)i"])
        _ = try run(["/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/ip", "link", "set", "\(ns)i", "up"])
        _ = try run(["/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/ip", "link", "set", "lo", "up"])

        _ = try run(["/usr/sbin/useradd", "--no-create-home", "--home-dir", host.home, "--shell", "/bin/sh", "--user-group", host.user])
        // sshd refuses a locked account when PAM is off; '*' is unlocked but has no password.
        _ = try run(["/usr/sbin/usermod", "-p", "*", host.user])
        try FileManager.default.createDirectory(atPath: host.home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        _ = try run(["/bin/chown", "\(host.user):\(host.user)", host.home])

        _ = try run(["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "\(host.home).hostkey"])
        let config = """
            ListenAddress \(host.address):22
            HostKey \(host.home).hostkey
            PidFile \(host.home).sshd.pid
            AuthorizedKeysFile \(directory)/authorized_keys
            AllowUsers \(host.user)
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PermitRootLogin no
            MaxSessions 100
            MaxStartups 100
            LogLevel ERROR

            """
        try config.write(toFile: "\(host.home).sshd_config", atomically: true, encoding: .utf8)
        _ = try ChildProcess.spawn(
            ["/usr/sbin/ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", "\(host.home).sshd_config"],
            output: host.sshdLog, detached: true
        )
    }

    private static func waitForSSH(_ host: Host) async throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(10) {
            if (try? await HTTP1Client.withConnection(to: .tcp(host: host.address, port: 22), connectTimeout: .milliseconds(200)) { _ in }) != nil {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let log = (try? String(contentsOfFile: host.sshdLog, encoding: .utf8)) ?? ""
        throw BatonError(.unavailable, "\(host.namespace): sshd did not listen on \(host.address):22 within 10s: \(log)")
    }

    /// Takes the host off the network (its link goes down), as a failed switch port would.
    public func cut(_ index: Int) throws {
        _ = try Self.run(["/usr/sbin/ip", "link", "set", hosts[index].link, "down"])
    }

    /// Puts a cut host back.
    public func restore(_ index: Int) throws {
        _ = try Self.run(["/usr/sbin/ip", "link", "set", hosts[index].link, "up"])
    }

    /// Every process in the hosts' namespaces and of their users is killed; namespaces, links,
    /// users and the directory are removed.
    public func remove() {
        for host in hosts { Self.removeHost(namespace: host.namespace, user: host.user) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func removeHost(namespace: String, user: String) {
        // Bounded: a process dying takes a moment, and userdel refuses a user still running one.
        for _ in 0..<40 {
            let pids = ((try? run(["/usr/sbin/ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
            for pid in pids { kill(pid, SIGKILL) }
            _ = try? ChildProcess.run(["/usr/bin/pkill", "-KILL", "-u", user])
            let userLeft = (try? ChildProcess.run(["/usr/bin/pgrep", "-u", user]))?.status == 0
            if pids.isEmpty && !userLeft { break }
            usleep(50_000)
        }
        _ = try? ChildProcess.run(["/usr/sbin/ip", "link", "del", "\(namespace)o"])
        _ = try? ChildProcess.run(["/usr/sbin/ip", "netns", "del", namespace])
        _ = try? ChildProcess.run(["/usr/sbin/userdel", user])
        _ = try? ChildProcess.run(["/usr/sbin/groupdel", user])
    }

    /// Removes what a killed test run left: namespaces and users with our prefix.
    static func sweep() {
        let namespaces = ((try? run(["/usr/sbin/ip", "netns", "list"])) ?? "").split(separator: "\n")
            .map { String($0.split(separator: " ")[0]) }.filter(isOurs)
        let passwd = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8)) ?? ""
        let users = passwd.split(separator: "\n").map { String($0.split(separator: ":")[0]) }.filter(isOurs)
        // Only fleets whose directory is gone or whose sshd is dead are leftovers; a fleet of a
        // test running now has both.
        for name in Set(namespaces + users) where !isLive(name) {
            removeHost(namespace: name, user: name)
        }
    }

    /// btnFLEETh INDEX exactly: never a real user or namespace that merely starts with "btn".
    private static func isOurs(_ name: String) -> Bool {
        guard name.hasPrefix(prefix) else { return false }
        let parts = name.dropFirst(prefix.count).split(separator: "h", omittingEmptySubsequences: false)
        return parts.count == 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    private static func isLive(_ name: String) -> Bool {
        let pidFile = "/tmp/baton-hosts-\(name.dropFirst(prefix.count).prefix { $0.isNumber })/\(name).sshd.pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            return false
        }
        return kill(pid, 0) == 0
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let (status, output) = try ChildProcess.run(arguments)
        guard status == 0 else { throw BatonError(.io, "\(arguments.joined(separator: " ")): exit \(status): \(output)") }
        return output
    }
}
