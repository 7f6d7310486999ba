import Foundation

/// Where a service's deployment state lives: the journal (every deployment's events, which
/// `--resume`, `status` and `history` read) and the deploy lock. `FileStateStore` keeps them in
/// the state directory, for one machine; `PostgresStateStore` in PostgreSQL, so any CI runner
/// or laptop can deploy, see status and resume.
public protocol StateStore: Sendable {
    /// Appends an event durably: it is on disk (or committed) when this returns.
    func append(_ event: RolloutEvent) async throws
    /// Every event, oldest first.
    func events() async throws -> [RolloutEvent]
    /// Takes the deploy lock for `holder`, or refuses naming who holds it.
    func lock(_ holder: LockHolder) async throws -> any HeldLock
    /// Who holds the lock now; nil when nobody does.
    func lockHolder() async throws -> LockHolder?
    /// Frees a lock whose holder is stuck: ends the holder's hold where the store can (a
    /// database session), or says why it cannot. Returns what it did, one line.
    func breakLock() async throws -> String
    /// Where the state is, for messages (never a password).
    var location: String { get }
}

/// A deploy lock being held; `release()` gives it up (a crashed holder's lock is given up by
/// the kernel or the database when its process or session ends).
public protocol HeldLock: Sendable {
    func release() async
}

/// Who holds the deploy lock, from where, since when: what a refused deploy is told.
public struct LockHolder: Sendable, Equatable, Codable, CustomStringConvertible {
    /// user@hostname
    public var who: String
    public var pid: Int32
    /// The working directory of the holder.
    public var directory: String
    /// What it is doing: "deploy 5.4", "rollback", "node remove web3".
    public var command: String
    public var since: Date

    public init(who: String, pid: Int32, directory: String, command: String, since: Date) {
        self.who = who
        self.pid = pid
        self.directory = directory
        self.command = command
        self.since = since
    }

    /// This process, about to run `command`.
    public static func current(_ command: String) -> LockHolder {
        let user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.environment["LOGNAME"] ?? String(getuid())
        return LockHolder(
            who: "\(user)@\(ProcessInfo.processInfo.hostName)", pid: getpid(), directory: FileManager.default.currentDirectoryPath,
            command: command, since: Date()
        )
    }

    public var description: String {
        "\(who) (pid \(pid), \(command), in \(directory)) since \(since.formatted(.iso8601))"
    }
}
