import BatonCore
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Synthetic users working through a deploy. Requests start at a fixed rate (open model: a slow
/// server cannot slow the users down and hide its latency), each from a virtual user in turn;
/// a user logs in first and again whenever it is logged out. At the end every acknowledged
/// write is read back.
public struct Probe: Sendable {
    public struct Options: Sendable {
        public var users: Int
        public var rate: Int
        public var duration: Duration
        public var timeout: Duration

        public init(users: Int = 20, rate: Int = 50, duration: Duration = .seconds(30), timeout: Duration = .seconds(10)) {
            self.users = users
            self.rate = rate
            self.duration = duration
            self.timeout = timeout
        }
    }

    public let scenario: Scenario
    public let options: Options
    public let recorder = ProbeRecorder()
    public let audit = WriteAudit()
    private let ui = NIOLockedValueBox(UILevel())
    private let users: [VirtualUser]
    /// A user starts a new browser session (empty cookie jar, new login) every so many
    /// requests, as new visitors keep arriving during a deploy.
    static let requestsPerSession = 30

    public init(scenario: Scenario, options: Options) {
        self.scenario = scenario
        self.options = options
        users = (0..<max(1, options.users)).map { VirtualUser(name: "probe-user-\($0 + 1)") }
    }

    /// Runs until `duration` passes or `stop` returns true (checked every tick); then reads
    /// back the writes. Returns the result.
    public func run(until stop: @escaping @Sendable () -> Bool = { false }) async -> ProbeResult {
        let start = ContinuousClock.now
        let interval = Duration.nanoseconds(1_000_000_000 / Int64(max(1, options.rate)))
        await withDiscardingTaskGroup { group in
            var index = 0
            while ContinuousClock.now - start < options.duration && !stop() {
                let due = start + interval * index
                try? await Task.sleep(until: due, clock: .continuous)
                let user = users[index % users.count]
                // Each user goes through the whole mix (picking by `index` alone would give
                // a user the same step every time when the user count divides the cycle).
                let step = pick(index / users.count + index % users.count)
                let sequence = index
                group.addTask { await perform(step, as: user, due: due, start: start, sequence: sequence) }
                index += 1
            }
        }
        let lost = await readBack()
        return ProbeResult(
            records: recorder.records.sorted { $0.at < $1.at },
            lostWrites: lost,
            acknowledgedWrites: audit.writes.count,
            p50: recorder.percentile(50),
            p99: recorder.percentile(99),
            releaseHeader: scenario.releaseHeader,
            ui: ui.withLockedValue { $0 }
        )
    }

    private func pick(_ index: Int) -> Scenario.Step {
        // A deterministic weighted round: weights 4,3,1,2 give a fixed cycle of 10.
        let total = scenario.steps.reduce(0) { $0 + $1.weight }
        var slot = (index &* 7919) % total
        for step in scenario.steps {
            if slot < step.weight { return step }
            slot -= step.weight
        }
        return scenario.steps[0]
    }

    private func perform(_ step: Scenario.Step, as user: VirtualUser, due: ContinuousClock.Instant, start: ContinuousClock.Instant, sequence: Int) async {
        // One request at a time per user; the rate is kept by having many users.
        await user.serialize {
            if user.countRequest() % Self.requestsPerSession == 0 { user.newSession() }
            if let login = scenario.login, !user.loggedIn {
                let response = await send(login, as: user, token: nil)
                if let response, (200..<400).contains(response.status) {
                    user.markLoggedIn()
                } else {
                    record(response, due: due, start: start, forcedFailure: response == nil || (response?.status ?? 0) >= 500)
                    return
                }
            }
            let token = step.readBack != nil ? "\(user.name)-\(sequence)-\(UInt32.random(in: 0...UInt32.max))" : nil
            let response = await send(step, as: user, token: token)
            let outcome = record(response, due: due, start: start, wasLoggedIn: scenario.login != nil)
            if outcome == .logout { user.loggedOut() }
            if outcome == .ok, let token, let readBack = step.readBack, let status = response?.status, (200..<300).contains(status) {
                audit.acknowledge(WriteAudit.Write(token: token, readBack: readBack.replacingOccurrences(of: "{token}", with: token)))
            }
            if outcome == .ok, let response { await observe(response, as: user, at: (due - start).seconds, start: start) }
        }
    }

    /// The UI level: a page load fetches the page's assets and remembers the page's release;
    /// later requests are compared with it.
    private func observe(_ response: Sent, as user: VirtualUser, at: Double, start: ContinuousClock.Instant) async {
        let release = response.headers.first(name: scenario.releaseHeader)
        if let page = response.page {
            user.page = release
            ui.withLockedValue { $0.pageLoaded(release: release) }
            for path in Self.assets(in: page) {
                let due = ContinuousClock.now
                let asset = await send(Scenario.Step(method: .GET, path: path, body: nil, weight: 1, readBack: nil), as: user, token: nil)
                record(asset, due: due, start: start)
                ui.withLockedValue { $0.assetLoaded(path, status: asset?.status ?? 0, page: release, at: (due - start).seconds) }
            }
        } else if let page = user.page, let release {
            ui.withLockedValue { $0.followUp(page: page, served: release, request: response.request, at: at) }
        }
    }

    /// Same-origin scripts (`<script src>`) and style sheets (`<link rel="stylesheet" href>`) a
    /// page references by absolute path (not `//host/…`); links to other pages are not fetched.
    public static func assets(in page: String) -> [String] {
        let scripts = page.matches(of: #/<script\b[^>]*\ssrc="(/[^/"][^"]*)"/#.ignoresCase()).map { String($0.output.1) }
        let styles = page.matches(of: #/<link\b[^>]*>/#.ignoresCase()).compactMap { tag -> String? in
            guard tag.output.contains(#/rel="?stylesheet/#.ignoresCase()), let href = tag.output.firstMatch(of: #/\shref="(/[^/"][^"]*)"/#) else { return nil }
            return String(href.output.1)
        }
        return scripts + styles
    }

    private struct Sent: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var error: String?
        var request = ""
        /// The body of an HTML response: a page load.
        var page: String?
    }

    private func send(_ step: Scenario.Step, as user: VirtualUser, token: String?) async -> Sent? {
        func fill(_ text: String) -> String {
            text.replacingOccurrences(of: "{user}", with: user.name)
                .replacingOccurrences(of: "{token}", with: token ?? "")
                .replacingOccurrences(of: "{n}", with: String(Int.random(in: 1...5)))
        }
        var headers = HTTPHeaders([("user-agent", "baton-probe")])
        if let cookie = user.cookieHeader { headers.add(name: "cookie", value: cookie) }
        if step.body != nil { headers.add(name: "content-type", value: "application/json") }
        let request = HTTPRequest(step.method, fill(step.path), headers: headers, body: step.body.map { ByteBuffer(string: fill($0)) })
        do {
            let response = try await HTTP1Client.send(request, to: scenario.baseURL, timeout: options.timeout)
            user.absorb(response.headers)
            if response.headers.first(name: "x-baton-release-moved") != nil, user.page != nil {
                // The page's release is gone and the page is told so (on any request of it):
                // it reloads, and its next HTML response is a new page.
                ui.withLockedValue { $0.moved += 1 }
                user.page = nil
            }
            let isPage = response.status == 200 && response.headers.first(name: "content-type")?.lowercased().hasPrefix("text/html") == true
            // Why a 5xx failed: the proxy's reason, else the first line the app answered.
            let reason = response.headers.first(name: "x-baton-error")
                ?? (response.status >= 500 ? String(response.bodyString.split(separator: "\n").first?.prefix(120) ?? "") : nil)
            return Sent(status: response.status, headers: response.headers, error: reason, request: "\(step.method) \(request.path)", page: isPage ? response.bodyString : nil)
        } catch {
            return Sent(status: 0, headers: [:], error: "\(error)", request: "\(step.method) \(request.path)")
        }
    }

    @discardableResult
    private func record(_ sent: Sent?, due: ContinuousClock.Instant, start: ContinuousClock.Instant, wasLoggedIn: Bool = false, forcedFailure: Bool = false) -> ProbeRecord.Outcome {
        let status = sent?.status ?? 0
        var outcome: ProbeRecord.Outcome = .ok
        if forcedFailure || status == 0 || status >= 500 {
            outcome = .failed
        } else if wasLoggedIn && isLoggedOut(sent!) {
            outcome = .logout
        }
        recorder.record(ProbeRecord(
            at: (due - start).seconds,
            latency: (ContinuousClock.now - due).seconds,
            status: status,
            outcome: outcome,
            release: sent?.headers.first(name: scenario.releaseHeader),
            backend: sent?.headers.first(name: "x-baton-backend"),
            error: outcome == .ok ? nil : sent?.error,
            request: outcome == .ok ? nil : sent?.request
        ))
        return outcome
    }

    private func isLoggedOut(_ sent: Sent) -> Bool {
        if scenario.loggedOutStatuses.contains(sent.status) { return true }
        if (300..<400).contains(sent.status), let marker = scenario.loggedOutLocation,
            sent.headers.first(name: "location")?.contains(marker) == true
        {
            return true
        }
        return false
    }

    /// Reads every acknowledged write back; returns the tokens not found.
    private func readBack() async -> [String] {
        var lost: [String] = []
        let reader = VirtualUser(name: "probe-audit")
        for write in audit.writes {
            var headers = HTTPHeaders()
            if let login = scenario.login, !reader.loggedIn {
                // Tried again for the next write when it failed.
                if let response = await send(login, as: reader, token: nil), (200..<400).contains(response.status) { reader.markLoggedIn() }
            }
            if let cookie = reader.cookieHeader { headers.add(name: "cookie", value: cookie) }
            let response = try? await HTTP1Client.send(HTTPRequest(.GET, write.readBack, headers: headers), to: scenario.baseURL, timeout: options.timeout)
            if !(response.map { $0.status == 200 && $0.bodyString.contains(write.token) } ?? false) { lost.append(write.token) }
        }
        return lost
    }
}

/// One synthetic user: a browser's cookie jar (the app's session, the proxy's release pin),
/// the release of the page it has open, and one request at a time.
final class VirtualUser: Sendable {
    struct Session {
        /// Cookies by name, in the order they were set.
        var cookies: [(name: String, value: String)] = []
        var loggedIn = false
        var page: String?
        var requests = 0
    }

    let name: String
    private let session = NIOLockedValueBox(Session())
    private let lock = AsyncSerialGate()

    init(name: String) {
        self.name = name
    }

    var cookieHeader: String? {
        session.withLockedValue { $0.cookies.isEmpty ? nil : $0.cookies.map { "\($0.name)=\($0.value)" }.joined(separator: "; ") }
    }
    var loggedIn: Bool { session.withLockedValue { $0.loggedIn } }
    var page: String? {
        get { session.withLockedValue { $0.page } }
        set { session.withLockedValue { $0.page = newValue } }
    }
    func markLoggedIn() { session.withLockedValue { $0.loggedIn = true } }
    func loggedOut() { session.withLockedValue { $0.loggedIn = false } }
    /// Counts a request; returns how many came before it.
    func countRequest() -> Int {
        session.withLockedValue { session in
            defer { session.requests += 1 }
            return session.requests
        }
    }
    /// A new browser: no cookies, no page, logged out.
    func newSession() { session.withLockedValue { $0 = Session(requests: $0.requests) } }

    /// Keeps the cookies a response sets (RFC 6265 §5.2: the name=value pair before the first
    /// ';', then attributes); a Max-Age of 0 or less, or an Expires in the past, removes one
    /// (Max-Age wins when both are there).
    func absorb(_ headers: HTTPHeaders) {
        let set = headers["set-cookie"]
        guard !set.isEmpty else { return }
        session.withLockedValue { session in
            for line in set {
                let parts = line.split(separator: ";", omittingEmptySubsequences: false)
                guard let pair = parts.first, let equals = pair.firstIndex(of: "=") else { continue }
                let name = pair[..<equals].trimmingCharacters(in: .whitespaces)
                guard !name.isEmpty else { continue }
                let value = pair[pair.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                var maxAge: Int?
                var expires: Date?
                for attribute in parts.dropFirst() {
                    let field = attribute.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard field.count == 2 else { continue }
                    switch field[0].lowercased() {
                    case "max-age": maxAge = Int(field[1])
                    case "expires": expires = Self.cookieDate.date(from: field[1])
                    default: break
                    }
                }
                let expired = maxAge.map { $0 <= 0 } ?? expires.map { $0 <= Date() } ?? false
                session.cookies.removeAll { $0.name == name }
                if !expired { session.cookies.append((name, value)) }
            }
        }
    }

    /// RFC 1123 dates, as servers write Expires.
    nonisolated(unsafe) private static let cookieDate: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }()

    func serialize(_ body: @Sendable () async -> Void) async {
        await lock.run(body)
    }
}

/// Runs async bodies one at a time, in arrival order.
final class AsyncSerialGate: Sendable {
    private let state = NIOLockedValueBox<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func run(_ body: @Sendable () async -> Void) async {
        await withCheckedContinuation { continuation in
            let runNow = state.withLockedValue { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if runNow { continuation.resume() }
        }
        await body()
        let next = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.busy = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
