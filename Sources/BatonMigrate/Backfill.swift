import BatonCore
import Foundation

/// How hard a backfill may push.
public struct BackfillOptions: Sendable {
    /// Rows in the first batch, and in every batch when `batchTime` is nil.
    public var batchSize: Int
    /// How long one batch should take; the batch size adapts to it (`BatchSizer`).
    public var batchTime: Duration?
    /// Pause between batches, to leave room for the application's own queries.
    public var delay: Duration
    /// Batches wait while a streaming replica has more than this many bytes of WAL to replay.
    public var maxReplicaLag: Int?

    public init(batchSize: Int = 1000, batchTime: Duration? = nil, delay: Duration = .zero, maxReplicaLag: Int? = nil) {
        self.batchSize = batchSize
        self.batchTime = batchTime
        self.delay = delay
        self.maxReplicaLag = maxReplicaLag
    }
}

public struct BackfillProgress: Sendable, Codable, Equatable {
    public var migration: String
    public var table: String
    public var rows: Int
    public var total: Int
    public var done: Bool
    public var rowsPerSecond: Double
    /// Rows in the batch that just ran.
    public var batchSize: Int = 0
    /// While the backfill waits for a replica: the bytes it has left to replay.
    public var replicaLag: Int? = nil
}

/// Fills the new columns of rows that existed when the migration started, by updating them in
/// batches of heap pages (TID range scans, in table order, as a bulk UPDATE reads, with no
/// index lookups). A row still where it was at start is in a batch; a row anyone updated since
/// went through the migration's triggers. Each batch is one statement that also saves the
/// position, so a killed backfill resumes after the last batch it finished. New rows need no
/// backfill: the triggers fill them as they are written.
struct Backfill {
    let session: PostgresSession
    let baseSchema: String
    let migration: String
    let target: MigrationPlan.Backfill
    let options: BackfillOptions

    private var table: String { SQL.qualified(baseSchema, target.table) }
    private var stateKey: String {
        "schema = \(SQL.literal(baseSchema)) AND migration = \(SQL.literal(migration)) AND table_name = \(SQL.literal(target.table))"
    }

    func run(progress: (BackfillProgress) -> Void) async throws {
        if target.key?.isEmpty == false {
            throw BatonError(.conflict, "the backfill of \(target.table) was started by an earlier Baton that batched by key; finish it with that Baton, or roll the migration back and start it again")
        }
        try await prepare()
        // A batch must never queue for long behind the application's row locks.
        try await session.execute("SET lock_timeout = '\(session.lockTimeout.milliseconds)ms'")
        // The batch sets the new columns itself; the migration's triggers stand aside for it.
        if target.inline { try await session.execute("SET baton.backfill = 'on'") }
        do {
            try await batches(progress: progress)
        } catch {
            try? await session.execute("RESET lock_timeout")
            try? await session.execute("RESET baton.backfill")
            throw error
        }
        try await session.execute("RESET lock_timeout")
        try await session.execute("RESET baton.backfill")
    }

    private func batches(progress: (BackfillProgress) -> Void) async throws {
        let clock = ContinuousClock()
        let began = clock.now
        var rowsPerPage = try await self.rowsPerPage()
        var sizer = BatchSizer(size: options.batchSize, target: options.batchTime)
        guard let (position, upper, savedFile, done, savedRows, savedTotal) = try await session.rows(
            "SELECT position[1]::int, upper[1]::int, upper[2]::bigint, done, rows, total FROM baton.backfills WHERE \(stateKey)",
            as: (Int?, Int?, Int?, Bool, Int64, Int64).self).first
        else {
            throw BatonError(.notFound, "backfill of \(target.table): its position was lost from baton.backfills")
        }
        if done { return }
        var from = position ?? 0
        var end = upper ?? 0
        var file = savedFile
        let firstRows = Int(savedRows)
        var lastRows = firstRows
        var lastTotal = Int(savedTotal)
        while true {
            try await waitForReplicas { lag in
                progress(BackfillProgress(migration: migration, table: target.table, rows: lastRows, total: lastTotal, done: false, rowsPerSecond: 0, replicaLag: lag))
            }
            if let restarted = try await restartIfRewritten(file: file) {
                (from, end, file) = (0, restarted.end, restarted.file)
            }
            let started = clock.now
            let to = min(from + max(1, Int((Double(sizer.size) / rowsPerPage).rounded())), end)
            guard let (rows, total, done) = try await batchWithRetries(batch(from: from, to: to, upper: end)).first else {
                throw BatonError(.notFound, "backfill of \(target.table): its position was lost from baton.backfills")
            }
            sizer.record(rows: rows - lastRows, took: clock.now - started)
            // The catalog's rows per page is an estimate; each page range measures it.
            if to > from && rows > lastRows { rowsPerPage = Double(rows - lastRows) / Double(to - from) }
            let seconds = (clock.now - began).seconds
            progress(BackfillProgress(
                migration: migration, table: target.table, rows: rows, total: max(total, rows), done: done,
                rowsPerSecond: seconds > 0 ? Double(rows - firstRows) / seconds : 0, batchSize: rows - lastRows))
            lastRows = rows
            lastTotal = max(total, rows)
            from = to
            if done { return }
            if options.delay > .zero { try await Task.sleep(for: options.delay) }
        }
    }

    /// Waits while a physical streaming replica is more than `maxReplicaLag` bytes of WAL
    /// behind, so the backfill's writes do not leave replicas (and reads sent to them) ever
    /// further behind. Logical walsenders, base backups and WAL archivers (no replay position)
    /// are not replicas here; a replica that disconnects is not waited for. The wait has no end
    /// of its own: the progress line says what it waits for, and a killed backfill resumes.
    private func waitForReplicas(_ waiting: (Int) -> Void) async throws {
        guard let limit = options.maxReplicaLag else { return }
        while true {
            let lag = Int(try await session.value("""
                SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)), 0)::bigint::text FROM pg_stat_replication r
                WHERE r.state IN ('streaming', 'catchup') AND r.replay_lsn IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')
                """) ?? "0") ?? 0
            if lag <= limit { return }
            waiting(lag)
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Whether this session may see replicas' positions (pg_monitor, or a superuser): without
    /// it pg_stat_replication shows them as NULL and `--max-replica-lag` could not wait.
    static func checkReplicaVisibility(_ session: PostgresSession) async throws {
        guard try await session.value("SELECT (rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE'))::text FROM pg_roles WHERE rolname = current_user") == "true" else {
            throw BatonError(.invalidArgument, "--max-replica-lag: this role cannot see the replicas' positions in pg_stat_replication; grant it pg_monitor")
        }
    }

    /// A batch that waited too long for a row lock, or lost a deadlock to the application, is
    /// the one that yields: it is rolled back (its position with it) and tried again shortly.
    private func batchWithRetries(_ sql: String) async throws -> [(Int, Int, Bool)] {
        try await session.retrying(on: ["40P01", "55P03", "40001"], attempts: 50, pause: .milliseconds(20), maxPause: .seconds(1)) {
            try await session.rows(sql, as: (Int64, Int64, Bool).self).map { (Int($0), Int($1), $2) }
        }
    }

    /// The first time: note where the table ends now. Rows past that are new and were written
    /// with the triggers in place.
    private func prepare() async throws {
        if try await session.value("SELECT 1 FROM baton.backfills WHERE \(stateKey)") != nil { return }
        let upper = Self.pagesAndFile(table)
        try await session.execute("""
            INSERT INTO baton.backfills (schema, migration, table_name, upper, total)
            SELECT \(SQL.literal(baseSchema)), \(SQL.literal(migration)), \(SQL.literal(target.table)), \(upper),
                   (SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint ELSE (SELECT count(*) FROM \(table)) END FROM pg_class WHERE oid = \(SQL.literal(table))::regclass)
            """)
        try await session.execute("UPDATE baton.backfills SET done = (upper IS NULL OR upper = ARRAY['0']) WHERE \(stateKey)")
    }

    /// `ARRAY[pages, filenode]`: where the table ends now, and which file it is, as
    /// `baton.backfills.upper` keeps them.
    private static func pagesAndFile(_ table: String) -> String {
        "ARRAY[(pg_relation_size(\(SQL.literal(table))) / current_setting('block_size')::int)::text, pg_relation_filenode(\(SQL.literal(table)))::text]"
    }

    /// A table rewritten since the backfill began (VACUUM FULL, CLUSTER, pg_repack) has its rows
    /// in new places, some in pages already done: the backfill starts over on the new file.
    /// Returns the new end and file, or nil when the file is the one the backfill began on.
    private func restartIfRewritten(file: Int?) async throws -> (end: Int, file: Int?)? {
        guard let file else { return nil }
        guard let now = Int(try await session.value("SELECT pg_relation_filenode(\(SQL.literal(table)))::text") ?? ""), now != file else { return nil }
        let row = try await session.rows("""
            UPDATE baton.backfills SET position = NULL, upper = \(Self.pagesAndFile(table)) WHERE \(stateKey) RETURNING upper[1]::int, upper[2]::bigint
            """, as: (Int?, Int?).self)
        return (row.first?.0 ?? 0, row.first?.1)
    }

    /// Rows per heap page, to turn a batch size into a page range.
    private func rowsPerPage() async throws -> Double {
        let perPage = Double(try await session.value("SELECT CASE WHEN relpages > 0 AND reltuples > 0 THEN reltuples / relpages ELSE 50 END FROM pg_class WHERE oid = \(SQL.literal(table))::regclass") ?? "50") ?? 50
        return max(perPage, 1)
    }

    /// Heap pages [from, to) of the table (a TID range scan: the pages in order, no index), the
    /// position saved with them; `upper` is where the table ended when the backfill began.
    /// Returns rows, total, done.
    private func batch(from: Int, to: Int, upper: Int) -> String {
        """
            WITH touched AS (
              UPDATE \(table) t SET \(target.setList)
              WHERE t.ctid >= '(\(from),0)'::tid AND t.ctid < '(\(to),0)'::tid RETURNING 1),
            saved AS (
              UPDATE baton.backfills SET
                position = ARRAY['\(to)'],
                rows = rows + (SELECT count(*) FROM touched),
                done = \(to >= upper)
              WHERE \(stateKey) RETURNING rows, total, done)
            SELECT * FROM saved
            """
    }
}
