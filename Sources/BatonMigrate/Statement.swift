/// One SQL statement of a migration phase and the strongest lock it takes, so `baton migrate
/// plan` can say what a phase will block before anything runs.
public struct Statement: Sendable, Codable, Equatable {
    public var sql: String
    public var lock: String
    /// False for CONCURRENTLY statements, which PostgreSQL refuses inside a transaction.
    public var transactional: Bool
    /// A user's raw SQL, which may hold several statements.
    public var script: Bool

    public init(_ sql: String, lock: String, transactional: Bool = true, script: Bool = false) {
        self.sql = sql
        self.lock = lock
        self.transactional = transactional
        self.script = script
    }

    static let briefExclusive = "ACCESS EXCLUSIVE, brief (catalog only)"
}
