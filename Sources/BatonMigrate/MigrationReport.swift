
/// What `baton migrate status` reports.
public struct MigrationReport: Sendable, Codable, Equatable {
    public struct Entry: Sendable, Codable, Equatable {
        public var name: String
        public var status: MigrationStatus
        public var versionSchema: String
        public var startedAt: String
        public var completedAt: String?
    }

    public var schema: String
    public var initialized: Bool
    /// The schema the newest release should put first in its search_path.
    public var latest: String
    /// Migrations started and not completed, oldest first: each builds on the one before, they
    /// complete in this order, and only the last can be rolled back.
    public var inFlight: [Entry]
    public var backfills: [BackfillProgress]
    public var history: [Entry]
}
