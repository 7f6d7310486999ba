import BatonCore
import Foundation
import Synchronization

/// Runs releases on hosts reached over SSH (`host: ssh://user@host:port`). Nothing is installed
/// on a host beforehand: a Linux host with sshd, `sh` and the usual base tools (tar,
/// sha256sum, setsid, awk) will do. Every operation is a small `sh` script sent with the
/// command, and instances run under the same `Supervisor` script as local ones, written to the
/// host when an instance starts. On each host, under `ssh.directory` (default
/// `.baton/SERVICE` in the SSH user's home):
/// `releases/ID/` (with `ID.sha256`, the checksum it was verified against), `run/NODE@ID.pid`
/// (the supervisor's state), `logs/NODE-ID.log` and `bin/baton-supervise`.
public struct SSHDriver: NodeDriver {
    public let settings: BatonConfig.SSH
    private let connections: [String: SSHConnection]
    /// Checksums of release directories here, by path: a release in the store never changes.
    private let checksums = Checksums()

    final class Checksums: Sendable {
        let known = Mutex<[String: String]>([:])
    }

    public init(nodes: [BatonConfig.Node], settings: BatonConfig.SSH) {
        self.settings = settings
        // One connection per host, shared by the nodes on it.
        var connections: [String: SSHConnection] = [:]
        let remote = nodes.filter { $0.ssh != nil }
        for target in Set(remote.compactMap(\.ssh)) {
            let names = remote.filter { $0.ssh == target }.map(\.name).sorted().joined(separator: "/")
            let connection = SSHConnection(target: target, settings: settings, node: names)
            for node in remote where node.ssh == target { connections[node.name] = connection }
        }
        self.connections = connections
    }

    private func connection(_ node: String) throws -> SSHConnection {
        guard let connection = connections[node] else { throw BatonError(.notFound, "node \(node) is not an ssh:// node") }
        return connection
    }

    /// How long one host operation may take before the host counts as unreachable.
    private var operationTimeout: Duration { settings.connectTimeout + .seconds(15) }

    private var directory: String { settings.directory }

    // MARK: Shipping

    public func ship(release: String, from source: String, to node: String, keep: Int) async throws -> String {
        let connection = try connection(node)
        return try await connection.shipping.run { try await ship(release: release, from: source, over: connection, keep: keep) }
    }

    private func ship(release: String, from source: String, over connection: SSHConnection, keep: Int) async throws -> String {
        let checksum: String
        if let known = checksums.known.withLock({ $0[source] }) {
            checksum = known
        } else {
            checksum = try await Self.localChecksum(of: source)
            checksums.known.withLock { $0[source] = checksum }
        }
        let remote = "\(directory)/releases/\(release)"
        let state = try await connection.run(Self.shipStateScript, [directory, release], timeout: operationTimeout)
        let fields = Dictionary(uniqueKeysWithValues: state.split(separator: "\n").compactMap { line -> (String, String)? in
            guard let equals = line.firstIndex(of: "=") else { return nil }
            return (String(line[..<equals]), String(line[line.index(after: equals)...]))
        })
        if fields["sum"] == checksum { return remote }
        let incoming = "\(directory)/releases/.\(release).incoming"
        let useRsync: Bool
        switch settings.transfer {
        case .rsync: useRsync = true
        case .tar: useRsync = false
        case .auto: useRsync = fields["rsync"] == "yes" && FileManager.default.isExecutableFile(atPath: "/usr/bin/rsync")
        }
        // A copy takes as long as the bytes take: give it a minute beyond the usual bound.
        let transferTimeout = operationTimeout + .seconds(60)
        if useRsync {
            let ssh = (["ssh"] + connection.options + ["-o", "ControlMaster=no"]).map(SSHConnection.quote).joined(separator: " ")
            let destination = "\(connection.target.destination):\(incoming)/"
            try await connection.runLocal(["/usr/bin/rsync", "-a", "--delete", "-e", ssh, source + "/", destination], timeout: transferTimeout)
        } else {
            let archive = NSTemporaryDirectory() + "baton-ship-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tar"
            defer { unlink(archive) }
            let (status, _, errors) = try await ChildProcess.run(["/bin/tar", "-cf", archive, "-C", source, "."], timeout: .seconds(600))
            guard status == 0 else { throw BatonError(.io, "\(source): cannot archive release \(release): \(errors)") }
            try await connection.run(Self.receiveTarScript, [directory, release], input: archive, timeout: transferTimeout)
        }
        do {
            try await connection.run(Self.installScript, [directory, release, checksum, String(keep)], timeout: operationTimeout)
        } catch let error as BatonError {
            throw BatonError(error.code, "\(error.message) (shipping release \(release))")
        }
        return remote
    }

    // MARK: The Baton binary

    /// Copies `binary` (scripts/dist's build runs on a Linux host with glibc 2.35 or later and
    /// no Swift) to `DIR/bin/baton` on the node's host, verified by its SHA-256 and run once
    /// with `--version` before it replaces the one there; a host that has the same one already
    /// is left alone. Returns what the host's copy says to `--version`.
    public func installBaton(_ binary: String, on node: String) async throws -> String {
        let connection = try connection(node)
        let (status, output, errors) = try await ChildProcess.run(["/usr/bin/sha256sum", binary], timeout: .seconds(120))
        guard status == 0, let sum = output.split(separator: " ").first.map(String.init) else {
            throw BatonError(.io, "\(binary): cannot checksum it: \(errors)")
        }
        let installed = try await connection.run(Self.binaryStateScript, [directory], timeout: operationTimeout)
        if installed.trimmingCharacters(in: .whitespacesAndNewlines) != sum {
            // 90 MB at 2 MB/s, beyond the usual bound.
            try await connection.run(Self.receiveBinaryScript, [directory, sum], input: binary, timeout: operationTimeout + .seconds(600))
        }
        return try await connection.run(#""$1/bin/baton" --version"#, [directory], timeout: operationTimeout).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static let binaryStateScript = #"""
        if [ -f "$1/bin/baton" ]; then sha256sum "$1/bin/baton" | cut -d' ' -f1; fi
        """#

    /// Receives the binary on stdin, verifies it and moves it into place in one rename, so a
    /// proxy started from it never sees half a file.
    static let receiveBinaryScript = #"""
        dir=$1 sum=$2 incoming="$1/bin/.baton.$$"
        trap 'rm -f "$incoming"' EXIT
        mkdir -p "$dir/bin" && cat > "$incoming" || exit 1
        got=$(sha256sum "$incoming" | cut -d' ' -f1)
        if [ "$got" != "$sum" ]; then echo "checksum mismatch: sent $sum, the host has $got" >&2; exit 3; fi
        chmod 755 "$incoming" || exit 1
        if ! out=$("$incoming" --version 2>&1); then
            echo "the binary does not run on this host ($out); ship scripts/dist's build" >&2; exit 4
        fi
        mv -f "$incoming" "$dir/bin/baton"
        """#

    /// The checksum both ends compute the same way: SHA-256 of the sorted list of every
    /// regular file's SHA-256 and path.
    static let checksumCommand = "find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2 | sha256sum | cut -d' ' -f1"

    public static func localChecksum(of directory: String) async throws -> String {
        let (status, output, errors) = try await ChildProcess.run(["/bin/sh", "-c", "cd \"$1\" && \(checksumCommand)", "baton", directory], timeout: .seconds(600))
        guard status == 0 else { throw BatonError(.io, "\(directory): cannot checksum the release: \(errors)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Prints `sum=` (the checksum the release was installed with, if it is there) and `rsync=`.
    static let shipStateScript = #"""
        dir=$1 id=$2
        if [ -d "$dir/releases/$id" ] && [ -f "$dir/releases/$id.sha256" ]; then echo "sum=$(cat "$dir/releases/$id.sha256")"; fi
        if command -v rsync >/dev/null 2>&1; then echo rsync=yes; else echo rsync=no; fi
        mkdir -p "$dir/releases"
        """#

    static let receiveTarScript = #"""
        dir=$1 id=$2 incoming="$1/releases/.$2.incoming"
        rm -rf "$incoming" && mkdir -p "$incoming" && tar -xf - -C "$incoming"
        """#

    /// Verifies the copy, moves it into place, records its checksum and prunes old releases
    /// (oldest first by arrival, never one a pid file names, never the new one).
    static let installScript = #"""
        dir=$1 id=$2 sum=$3 keep=$4 incoming="$1/releases/.$2.incoming"
        got=$(cd "$incoming" && \#(checksumCommand)) || exit 1
        if [ "$got" != "$sum" ]; then echo "checksum mismatch: sent $sum, the host has $got" >&2; rm -rf "$incoming"; exit 3; fi
        rm -rf "$dir/releases/$id" && mv "$incoming" "$dir/releases/$id" && echo "$sum" > "$dir/releases/$id.sha256" || exit 1
        used=" $id "
        for f in "$dir"/run/*@*.pid; do [ -f "$f" ] || continue; r=${f##*@}; used="$used${r%.pid} "; done
        n=0
        for f in $(ls -t "$dir/releases" | grep '\.sha256$'); do
            r=${f%.sha256}; n=$((n + 1))
            [ "$n" -le "$keep" ] && continue
            case "$used" in *" $r "*) continue;; esac
            rm -rf "$dir/releases/$r" "$dir/releases/$r.sha256"
        done
        """#

    // MARK: Instances

    public func start(node: String, release: String, port: Int, command: String, environment: [String: String]) async throws -> NodeInstance {
        let connection = try connection(node)
        var env = environment
        env["BATON_NODE"] = node
        env["BATON_RELEASE"] = release
        env["BATON_PORT"] = String(port)
        let assignments = env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let output = try await connection.run(
            Self.startScript, [directory, node, release, String(port), command, Supervisor.script] + assignments, timeout: operationTimeout
        )
        guard let instance = Self.parseInstances(output, node: node, host: connection.target.host).first else {
            throw BatonError(.unavailable, "\(node): release \(release) did not start; see \(logLocation(node: node, release: release))")
        }
        return instance
    }

    /// Writes the supervisor, starts it in a session of its own (setsid) detached from the SSH
    /// session, and waits for its state file.
    static let startScript = #"""
        dir=$1 node=$2 release=$3 port=$4 command=$5 supervisor=$6
        shift 6
        mkdir -p "$dir/run" "$dir/logs" "$dir/bin" || exit 1
        if [ "$(cat "$dir/bin/baton-supervise" 2>/dev/null)" != "$supervisor" ]; then
            printf '%s\n' "$supervisor" > "$dir/bin/baton-supervise.$$" && chmod 755 "$dir/bin/baton-supervise.$$" && mv -f "$dir/bin/baton-supervise.$$" "$dir/bin/baton-supervise" || exit 1
        fi
        state="$dir/run/$node@$release.pid"
        rm -f "$state"
        log="$dir/logs/$node-$release.log"
        command -v setsid >/dev/null 2>&1 || { echo "setsid not found: Baton needs it (util-linux) to start instances in a session of their own" >&2; exit 3; }
        setsid env "$@" /bin/sh "$dir/bin/baton-supervise" "$state" "$port" "$command" </dev/null >>"$log" 2>&1 &
        i=0
        while [ ! -s "$state" ] && [ "$i" -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
        [ -s "$state" ] || { echo "the supervisor did not start; see $log" >&2; exit 3; }
        read -r pid p restarts status < "$state"
        echo "$release $pid $p $restarts $status 1"
        """#

    public func instances(node: String) async throws -> [NodeInstance] {
        let connection = try connection(node)
        let output = try await connection.run(Self.instancesScript, [directory, node], timeout: operationTimeout)
        return Self.parseInstances(output, node: node, host: connection.target.host)
    }

    /// Alive means signalable and not a zombie (an orphan waits for a reaper that may be slow).
    static let aliveFunction = #"""
        alive() { kill -0 "$1" 2>/dev/null || return 1; s=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null); [ "$s" != Z ]; }
        """#

    /// One line per instance: `RELEASE PID PORT RESTARTS LAST_EXIT ALIVE`.
    static let instancesScript = aliveFunction + "\n" + #"""
        dir=$1 node=$2
        for f in "$dir/run/$node@"*.pid; do
            [ -f "$f" ] || continue
            r=${f##*/}; r=${r#"$node@"}; r=${r%.pid}
            read -r pid port restarts status < "$f" || continue
            if alive "$pid"; then a=1; else a=0; fi
            echo "$r $pid $port ${restarts:-0} ${status:--} $a"
        done
        """#

    static func parseInstances(_ output: String, node: String, host: String) -> [NodeInstance] {
        output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 6, let pid = Int32(fields[1]), let port = Int(fields[2]) else { return nil }
            return NodeInstance(
                node: node, release: String(fields[0]), host: host, pid: pid, port: port, alive: fields[5] == "1",
                restarts: Int(fields[3]) ?? 0, lastExit: Int32(fields[4])
            )
        }.sorted { $0.release < $1.release }
    }

    public func stop(_ instance: NodeInstance, signal: Int32, grace: Duration) async throws {
        let connection = try connection(instance.node)
        let tenths = Int(grace.milliseconds / 100)
        try await connection.run(
            Self.stopScript, [directory, instance.node, instance.release, String(instance.pid), Self.signalName(signal), String(tenths)],
            timeout: grace + operationTimeout
        )
    }

    /// Signals the supervisor's process group (the release gets the signal, the supervisor
    /// stops restarting), kills it after the grace, and forgets the instance.
    static let stopScript = aliveFunction + "\n" + #"""
        dir=$1 node=$2 release=$3 pid=$4 signal=$5 tenths=$6
        # The supervisor, or what is left of its session (an app whose supervisor died).
        if alive "$pid" || kill -0 -- "-$pid" 2>/dev/null; then
            kill -s "$signal" -- "-$pid" 2>/dev/null
            i=0
            while { alive "$pid" || kill -0 -- "-$pid" 2>/dev/null; } && [ "$i" -lt "$tenths" ]; do sleep 0.1; i=$((i + 1)); done
            kill -s KILL -- "-$pid" 2>/dev/null
            i=0
            while alive "$pid" || kill -0 -- "-$pid" 2>/dev/null; do
                [ "$i" -ge 100 ] && { echo "pid $pid (release $release) survived SIGKILL for 10s" >&2; exit 3; }
                sleep 0.1; i=$((i + 1))
            done
        fi
        rm -f "$dir/run/$node@$release.pid"
        """#

    static func signalName(_ signal: Int32) -> String {
        BatonConfig.signals.first { $0.value == signal }?.key ?? (signal == SIGKILL ? "KILL" : "TERM")
    }

    // MARK: Ports

    public func freePort(node: String) async throws -> Int {
        let output = try await connection(node).run(Self.freePortScript, [String(UInt32.random(in: 0...UInt32.max))], timeout: operationTimeout)
        guard let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BatonError(.unavailable, "\(node): found no free port between 20000 and 39999")
        }
        return port
    }

    /// Ports listening (state 0A) in /proc/net/tcp and tcp6, hexadecimal after the colon.
    static let listeningPorts = #"""
        function hex(s,   n, i) { n = 0; for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return n }
        """#

    /// A port from 20000–39999, starting at a random place (seeded by `$1`: awk's own seed is
    /// the time in seconds, the same for two nodes asking at once), that nothing listens on.
    static let freePortScript = #"""
        cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v seed="$1" '
        \#(listeningPorts)
        $4 == "0A" { split($2, a, ":"); used[hex(a[2])] = 1 }
        END { srand(seed); s = int(rand() * 20000); for (i = 0; i < 20000; i++) { p = 20000 + (s + i) % 20000; if (!(p in used)) { print p; exit } } }'
        """#

    public func listener(node: String, port: Int) async throws -> PortListener? {
        let output = try await connection(node).run(Self.listenerScript, [String(port)], timeout: operationTimeout)
        let lines = output.split(separator: "\n")
        guard lines.first == "listening" else { return nil }
        var pids: [Int32] = []
        var sessions: [Int32] = []
        var command = ""
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ", maxSplits: 2)
            guard fields.count >= 2, let pid = Int32(fields[0]), let session = Int32(fields[1]) else { continue }
            if pids.isEmpty, fields.count == 3 { command = String(fields[2]) }
            pids.append(pid)
            if !sessions.contains(session) { sessions.append(session) }
        }
        return PortListener(port: port, pids: pids, sessions: sessions.sorted(), command: command)
    }

    /// `listening`, then `PID SESSION COMMAND` for each process (that this user can see) holding
    /// a listening socket on the port.
    static let listenerScript = #"""
        port=$1
        inodes=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v port="$port" '
        \#(listeningPorts)
        $4 == "0A" { split($2, a, ":"); if (hex(a[2]) == port) print $10 }')
        [ -n "$inodes" ] || exit 0
        echo listening
        # Only this user's processes: the others' descriptors cannot be read anyway.
        own=$(find /proc -mindepth 1 -maxdepth 1 -name '[0-9]*' -user "$(id -u)" 2>/dev/null | sed 's|$|/fd|')
        for pid in $(ls -l $own 2>/dev/null | awk -v inodes=" $(echo $inodes) " '
            /^\/proc\/[0-9]+\/fd:$/ { split($0, p, "/"); pid = p[3]; next }
            { if (match($0, /socket:\[[0-9]+\]$/)) { i = substr($0, RSTART + 8, RLENGTH - 9); if (index(inodes, " " i " ")) print pid } }' | sort -un); do
            session=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f4)
            command=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)
            [ -n "$session" ] && echo "$pid $session $command"
        done
        exit 0
        """#

    /// One command that does nothing, timed: the cost of a round trip to the node's host.
    public func roundTrip(node: String) async throws -> Duration {
        let connection = try connection(node)
        let start = ContinuousClock.now
        try await connection.run("true", [], timeout: operationTimeout)
        return ContinuousClock.now - start
    }

    public func logLocation(node: String, release: String) -> String {
        let target = connections[node].map(\.target.description) ?? node
        return "\(target):\(directory)/logs/\(node)-\(release).log"
    }
}
