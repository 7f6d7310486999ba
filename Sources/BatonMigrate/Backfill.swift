import BatonCore
import Foundation

/// How hard a backfill may push.
public struct BackfillOptions: Sendable {
    public var batchSize: Int
    /// Pause between batches, to leave room for the application's own queries.
    public var delay: Duration

    public init(batchSize: Int = 1000, delay: Duration = .zero) {
        self.batchSize = batchSize
        self.delay = delay
    }
}

public struct BackfillProgress: Sendable, Codable, Equatable {
    public var table: String
    public var rows: Int
    public var total: Int
    public var done: Bool
    public var rowsPerSecond: Double
}

/// Fills the new columns of rows that existed when the migration started, by updating them in
/// batches so the migration's triggers run. Each batch is one statement that also saves the
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
        try await prepare()
        // A batch must never queue for long behind the application's row locks.
        try await session.execute("SET lock_timeout = '\(session.lockTimeout.milliseconds)ms'")
        do {
            try await batches(progress: progress)
        } catch {
            try? await session.execute("RESET lock_timeout")
            throw error
        }
        try await session.execute("RESET lock_timeout")
    }

    private func batches(progress: (BackfillProgress) -> Void) async throws {
        let clock = ContinuousClock()
        let began = clock.now
        var firstRows: Int?
        let perBatch = try await pagesPerBatch()
        while true {
            guard let row = try await batchWithRetries(target.key.isEmpty ? ctidBatch(pages: perBatch) : keyBatch()).first else {
                throw BatonError(.notFound, "backfill of \(target.table): its position was lost from baton.backfills")
            }
            let rows = Int(row[0] ?? "0") ?? 0
            let total = Int(row[1] ?? "0") ?? 0
            let done = row[2] == "true"
            if firstRows == nil { firstRows = rows }
            let seconds = (clock.now - began).seconds
            progress(BackfillProgress(table: target.table, rows: rows, total: max(total, rows), done: done, rowsPerSecond: seconds > 0 ? Double(rows - (firstRows ?? 0)) / seconds : 0))
            if done { return }
            if options.delay > .zero { try await Task.sleep(for: options.delay) }
        }
    }

    /// A batch that waited too long for a row lock, or lost a deadlock to the application, is
    /// the one that yields: it is rolled back (its position with it) and tried again shortly.
    private func batchWithRetries(_ sql: String) async throws -> [[String?]] {
        var pause = Duration.milliseconds(20)
        var attempt = 1
        while true {
            do {
                return try await session.rows(sql)
            } catch let error as SessionError where ["40P01", "55P03", "40001"].contains(error.sqlState ?? "") && attempt < 50 {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(1))
                attempt += 1
            }
        }
    }

    /// The first time: note where the table ends now. Rows past that are new and were written
    /// with the triggers in place.
    private func prepare() async throws {
        if try await session.value("SELECT 1 FROM baton.backfills WHERE \(stateKey)") != nil { return }
        let upper: String
        if target.key.isEmpty {
            upper = "ARRAY[(pg_relation_size(\(SQL.literal(table))) / current_setting('block_size')::int)::text]"
        } else {
            let columns = target.key.map { "\(SQL.ident($0))::text" }.joined(separator: ", ")
            let order = target.key.map { "\(SQL.ident($0)) DESC" }.joined(separator: ", ")
            upper = "(SELECT ARRAY[\(columns)] FROM \(table) ORDER BY \(order) LIMIT 1)"
        }
        try await session.execute("""
            INSERT INTO baton.backfills (schema, migration, table_name, upper, total)
            SELECT \(SQL.literal(baseSchema)), \(SQL.literal(migration)), \(SQL.literal(target.table)), \(upper),
                   (SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint ELSE (SELECT count(*) FROM \(table)) END FROM pg_class WHERE oid = \(SQL.literal(table))::regclass)
            """)
        try await session.execute("UPDATE baton.backfills SET done = (upper IS NULL OR upper = ARRAY['0']) WHERE \(stateKey)")
    }

    private func pagesPerBatch() async throws -> Int {
        guard target.key.isEmpty else { return 0 }
        let perPage = Double(try await session.value("SELECT CASE WHEN relpages > 0 AND reltuples > 0 THEN reltuples / relpages ELSE 50 END FROM pg_class WHERE oid = \(SQL.literal(table))::regclass") ?? "50") ?? 50
        return max(1, Int(Double(options.batchSize) / max(perPage, 1)))
    }

    /// Next `batchSize` keys after the position and up to the upper bound, updated and saved in
    /// one statement.
    private func keyBatch() -> String {
        let key = target.key.map(SQL.ident)
        let typed = { (array: String) in
            "ROW(" + zip(target.key.indices, target.keyTypes).map { "CAST(b.\(array)[\($0 + 1)] AS \($1))" }.joined(separator: ", ") + ")"
        }
        let tuple = "ROW(" + key.map { "t.\($0)" }.joined(separator: ", ") + ")"
        let touch = SQL.ident(target.touch)
        return """
            WITH b AS (SELECT position, upper FROM baton.backfills WHERE \(stateKey)),
            batch AS (
              SELECT \(key.map { "t.\($0)" }.joined(separator: ", ")) FROM \(table) t, b
              WHERE NOT (SELECT done FROM baton.backfills WHERE \(stateKey))
                AND (b.position IS NULL OR \(tuple) > \(typed("position"))) AND \(tuple) <= \(typed("upper"))
              ORDER BY \(key.map { "t.\($0)" }.joined(separator: ", ")) LIMIT \(options.batchSize)),
            touched AS (
              UPDATE \(table) t SET \(touch) = t.\(touch) FROM batch
              WHERE \(tuple) = ROW(\(key.map { "batch.\($0)" }.joined(separator: ", "))) RETURNING 1),
            saved AS (
              UPDATE baton.backfills SET
                position = coalesce((SELECT ARRAY[\(key.map { "\($0)::text" }.joined(separator: ", "))] FROM batch ORDER BY \(key.map { "\($0) DESC" }.joined(separator: ", ")) LIMIT 1), position),
                rows = rows + (SELECT count(*) FROM touched),
                done = (SELECT count(*) FROM batch) < \(options.batchSize)
              WHERE \(stateKey) RETURNING rows::text, total::text, done::text)
            SELECT * FROM saved
            """
    }

    /// Next `pages` heap pages of the table, up to where it ended when the backfill began.
    private func ctidBatch(pages: Int) -> String {
        let touch = SQL.ident(target.touch)
        let start = "coalesce((SELECT position[1]::bigint FROM baton.backfills WHERE \(stateKey)), 0)"
        return """
            WITH range AS (
              SELECT \(start) AS first, least(\(start) + \(pages), (SELECT upper[1]::bigint FROM baton.backfills WHERE \(stateKey))) AS last),
            touched AS (
              UPDATE \(table) t SET \(touch) = t.\(touch) FROM range
              WHERE NOT (SELECT done FROM baton.backfills WHERE \(stateKey))
                AND t.ctid >= format('(%s,0)', range.first)::tid AND t.ctid < format('(%s,0)', range.last)::tid RETURNING 1),
            saved AS (
              UPDATE baton.backfills SET
                position = ARRAY[(SELECT last FROM range)::text],
                rows = rows + (SELECT count(*) FROM touched),
                done = (SELECT last FROM range) >= upper[1]::bigint
              WHERE \(stateKey) RETURNING rows::text, total::text, done::text)
            SELECT * FROM saved
            """
    }
}
