import BatonCore
import BatonProxy
import Foundation

/// Drives one HAProxy backend through the Runtime API: each node instance is a dynamic server
/// named like a `baton proxy` backend (NODE-RELEASE). HAProxy's own health checks decide when a
/// server is up: the backend's `option httpchk` says what is checked, and Baton passes the
/// interval, rise and fall. The backend needs a dynamic balance algorithm (`leastconn` or
/// `roundrobin`), and the socket `level admin`.
public struct HAProxyController: TrafficController {
    public let runtime: HAProxyRuntime
    public let backend: String

    public init(runtime: HAProxyRuntime, backend: String) {
        self.runtime = runtime
        self.backend = backend
    }

    /// How this load balancer is named in `backends()` and in messages.
    public var description: String { "haproxy \(runtime.endpoint) backend \(backend)" }

    // MARK: TrafficController

    /// HAProxy routes without version affinity: the release is not used.
    public func admit(backend name: String, address: String, release: String?, health: HealthCheck, timeout: Duration) async throws {
        try Self.checkArgument(name, what: "server name")
        try Self.checkArgument(address, what: "address")
        if let existing = try await servers()[name] {
            if existing.address == address && existing.state == .ready { return }
            if existing.address != address { try await remove(backend: name) }
        }
        if try await servers()[name] == nil {
            try await add(name, address: address, health: health)
        }
        // Again for a server whose add was interrupted before its checks were turned on.
        try await command("enable health \(backend)/\(name)")
        // HAProxy counts a server up the moment it leaves maintenance, whatever its checks
        // said. So it waits in drain (checked, but given no requests), marked down, until its
        // checks pass; only then is it made ready.
        try await command("set server \(backend)/\(name) state drain")
        try await command("set server \(backend)/\(name) health down")
        let start = ContinuousClock.now
        while true {
            let server = try await servers()[name]
            if let server, server.operational { break }
            guard ContinuousClock.now - start < timeout else {
                let why = server.map { "check \($0.checkStatus)" } ?? "the server is gone"
                throw BatonError(.timeout, "\(description): \(name) did not come up within \(timeout.shortDescription) (\(why))")
            }
            try await Task.sleep(for: min(health.interval, .milliseconds(100)))
        }
        try await command("set server \(backend)/\(name) state ready")
    }

    public func drain(backend name: String, timeout: Duration) async throws -> [DrainResult] {
        try Self.checkArgument(name, what: "server name")
        guard let server = try await servers()[name] else { return [] }
        // Already in maintenance: drained, and drain state would let checks and persistent
        // requests back in.
        if server.state == .drained { return [DrainResult(name: name, cut: 0, elapsedMilliseconds: 0)] }
        let start = ContinuousClock.now
        try await command("set server \(backend)/\(name) state drain")
        var busy = try await inFlight(name)
        while busy > 0, ContinuousClock.now - start < timeout {
            try await Task.sleep(for: .milliseconds(20))
            busy = try await inFlight(name)
        }
        if busy > 0 { try await command("shutdown sessions server \(backend)/\(name)") }
        // Drained means no new requests at all: `drain` would still let persistent ones in.
        try await command("set server \(backend)/\(name) state maint")
        return [DrainResult(name: name, cut: busy, elapsedMilliseconds: (ContinuousClock.now - start).milliseconds)]
    }

    public func remove(backend name: String) async throws {
        try Self.checkArgument(name, what: "server name")
        guard try await servers()[name] != nil else { return }
        try await command("set server \(backend)/\(name) state maint")
        try await command("shutdown sessions server \(backend)/\(name)")
        // Idle pooled connections also block `del server`; HAProxy purges them within its
        // pool-purge-delay (5 s by default).
        let start = ContinuousClock.now
        while true {
            let answer = try await runtime.send("del server \(backend)/\(name)").trimmingCharacters(in: .whitespacesAndNewlines)
            if answer == "Server deleted." || answer == "No such server." { return }
            guard answer.hasPrefix("Server still has connections"), ContinuousClock.now - start < .seconds(15) else {
                throw BatonError(.protocolError, "\(description): del server \(name): \(answer)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    public func backends() async throws -> [String: [BackendInfo]] {
        let servers = try await servers()
        let stats = try await statistics()
        return [description: servers.values.sorted { $0.name < $1.name }.map { server in
            let current = stats[server.name]
            var state = server.state
            if state == .draining && (current?.inFlight ?? 0) == 0 { state = .drained }
            return BackendInfo(
                name: server.name, address: server.address, state: state, healthy: server.operational,
                inFlight: current?.inFlight ?? 0, health: nil, stats: current?.stats,
                lastFailure: server.operational ? nil : "check \(server.checkStatus)"
            )
        }]
    }

    /// Requests and 5xx per server from HAProxy's counters. HAProxy keeps no latency
    /// distribution per server, so an observe window's p99 is judged on `baton proxy` alone.
    public func stats() async throws -> [String: BackendStats] {
        try await statistics().mapValues(\.stats)
    }

    // MARK: Runtime API

    private func add(_ name: String, address: String, health: HealthCheck) async throws {
        // Without `timeout check` in haproxy.cfg a check may take only `inter`: so `inter` is at
        // least the check's timeout, and `downinter`/`fastinter` (while down or changing state,
        // as when being admitted) the interval.
        let interval = max(1, health.interval.milliseconds)
        let inter = max(interval, health.timeout.milliseconds)
        let answer = try await runtime.send(
            "add server \(backend)/\(name) \(address) check inter \(inter) downinter \(interval) fastinter \(interval) rise \(health.rise) fall \(health.fall)"
        ).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answer == "New server registered." else {
            throw BatonError(.protocolError, "\(description): add server \(name) \(address): \(answer)")
        }
        // A dynamic server starts in maintenance with its checks off.
        try await command("enable health \(backend)/\(name)")
    }

    /// Names and addresses go into Runtime API commands, where a space or `;` would start
    /// another argument or command: only what HAProxy allows in a server name, and ':' '[' ']'.
    static func checkArgument(_ value: String, what: String) throws {
        let allowed = value.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || "-_.:[]".unicodeScalars.contains($0)) }
        guard !value.isEmpty, allowed else {
            throw BatonError(.invalidArgument, "HAProxy \(what) '\(value)': expected ASCII letters, digits, '-', '_', '.' or ':'")
        }
    }

    /// A command whose success is an empty answer; anything else is HAProxy's error.
    private func command(_ text: String) async throws {
        let answer = try await runtime.send(text).trimmingCharacters(in: .whitespacesAndNewlines)
        guard answer.isEmpty else { throw BatonError(.protocolError, "\(description): \(text): \(answer)") }
    }

    struct Server {
        var name: String
        var address: String
        var state: BackendStateMachine.State
        var operational: Bool
        var checkStatus: String
    }

    /// `show servers state BACKEND`, by server name.
    func servers() async throws -> [String: Server] {
        let rows = try Self.table(try await runtime.send("show servers state \(backend)"), separator: " ", source: "\(description): show servers state")
        var result: [String: Server] = [:]
        for row in rows {
            guard let name = row["srv_name"], let host = row["srv_addr"], let port = row["srv_port"],
                let operational = row["srv_op_state"].flatMap(Int.init), let admin = row["srv_admin_state"].flatMap(Int.init)
            else { continue }
            result[name] = Server(
                name: name, address: "\(host):\(port)",
                state: Self.state(operational: operational, admin: admin),
                operational: operational == 2,
                checkStatus: Self.checkStatus(row["srv_check_status"])
            )
        }
        return result
    }

    /// Admin flags win over health: maintenance (forced, inherited, from the config, resolution,
    /// hostname) reads as drained, drain as draining, then the operational state.
    static func state(operational: Int, admin: Int) -> BackendStateMachine.State {
        let maintenance = 0x01 | 0x02 | 0x04 | 0x20 | 0x40
        let drain = 0x08 | 0x10
        if admin & maintenance != 0 { return .drained }
        if admin & drain != 0 { return .draining }
        switch operational {
        case 2: return .ready
        case 1: return .adding
        default: return .unhealthy
        }
    }

    /// `srv_check_status` is HAProxy's internal check result number; the names the stats page uses.
    static func checkStatus(_ value: String?) -> String {
        let names = [
            "UNKNOWN", "INI", "START", "CHECKED", "HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
            "L7TOUT", "L7RSP", "L57DATA", "L7OKD", "L7OKCD", "L7STS", "PROCERR", "PROCTOUT", "PROCOK",
        ]
        guard let value, let number = Int(value), names.indices.contains(number) else { return value ?? "unknown" }
        return names[number]
    }

    struct ServerCounters {
        var inFlight: Int
        var stats: BackendStats
    }

    /// `show stat BACKEND 4 -1` (the backend's servers), by server name.
    func statistics() async throws -> [String: ServerCounters] {
        let rows = try Self.table(try await runtime.send("show stat \(backend) 4 -1"), separator: ",", source: "\(description): show stat")
        var result: [String: ServerCounters] = [:]
        for row in rows {
            guard let name = row["svname"] else { continue }
            func number(_ column: String) -> UInt64 { row[column].flatMap { UInt64($0) } ?? 0 }
            var stats = BackendStats()
            // Connection and response errors are requests the server failed without an
            // answer of its own (HAProxy answered 502/503/504 or cut them).
            let failed = number("econ") + number("eresp")
            stats.requests = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].map(number).reduce(failed, +)
            stats.serverErrors = number("hrsp_5xx") + failed
            result[name] = ServerCounters(inFlight: Int(number("scur") + number("qcur")), stats: stats)
        }
        return result
    }

    private func inFlight(_ name: String) async throws -> Int {
        try await statistics()[name]?.inFlight ?? 0
    }

    /// Rows of a Runtime API table whose header line starts with "# ", keyed by column name.
    /// Lines before the header (a format version) are skipped; an answer with no header is
    /// HAProxy's error message.
    static func table(_ answer: String, separator: Character, source: String) throws -> [[String: String]] {
        let lines = answer.split(separator: "\n", omittingEmptySubsequences: true)
        guard let headerIndex = lines.firstIndex(where: { $0.hasPrefix("# ") }) else {
            let message = answer.trimmingCharacters(in: .whitespacesAndNewlines)
            throw BatonError(.protocolError, "\(source): \(message.isEmpty ? "empty answer" : message)")
        }
        let columns = lines[headerIndex].dropFirst(2).split(separator: separator, omittingEmptySubsequences: false).map(String.init)
        return lines[(headerIndex + 1)...].map { line in
            let fields = line.split(separator: separator, omittingEmptySubsequences: false)
            var row: [String: String] = [:]
            for (column, field) in zip(columns, fields) { row[column] = String(field) }
            return row
        }
    }
}
