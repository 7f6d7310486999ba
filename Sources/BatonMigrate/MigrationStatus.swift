/// Where a migration is: its backfill running (the new version does not exist yet), active
/// (both versions live), or complete (only the new version is left).
public enum MigrationStatus: String, Sendable, Codable, Equatable {
    case backfilling
    case active
    case complete
}
