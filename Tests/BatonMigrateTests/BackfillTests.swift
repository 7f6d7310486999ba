import BatonCore
import BatonMigrate
import BatonTesting
import Foundation
import Testing

/// The backfill against a real PostgreSQL: killed and resumed, without a primary key, and with
/// the application writing while it runs.
@Suite(.serialized, .postgres) struct BackfillTests {
    @Test func killedStartResumesAtItsCheckpoint() async throws {
        try await MigrationDatabase.with("""
            CREATE TABLE items (id bigserial PRIMARY KEY, n int NOT NULL);
            INSERT INTO items (n) SELECT g FROM generate_series(1, 20000) g;
            """) { db in
            let file = NSTemporaryDirectory() + "baton-double-\(UInt32.random(in: 0...UInt32.max)).json"
            try #"{"name": "02_double", "operations": [{"add_column": {"table": "items", "up": "n * 2", "column": {"name": "twice", "type": "int", "nullable": false}}}]}"#
                .write(toFile: file, atomically: true, encoding: .utf8)
            defer { unlink(file) }
            let pid = try ChildProcess.spawn(
                [try BuiltProducts.path("baton"), "migrate", "start", file, "--batch-size", "200", "--batch-time", "0", "--delay", "20ms", "--database-url", db.url],
                output: file + ".log", detached: false)
            defer { unlink(file + ".log") }
            // Kill it mid-backfill, once some batches are saved.
            var saved = 0
            for _ in 0..<1500 {
                if saved >= 2000 { break }
                try await Task.sleep(for: .milliseconds(10))
                saved = Int(try await db.query("SELECT coalesce(sum(rows), 0) FROM baton.backfills").first ?? "0") ?? 0
            }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            saved = Int(try await db.query("SELECT rows FROM baton.backfills").first ?? "0") ?? 0
            #expect(saved >= 2000 && saved < 20000, "killed mid-backfill")
            #expect(try await db.migrator.status().inFlight.last?.status == .backfilling)
            // The checkpoint moves with its batch: exactly the saved rows are filled.
            #expect(try await db.query("SELECT count(*) FROM items WHERE _baton_new_twice IS NOT NULL") == [String(saved)])
            #expect(try await db.migrator.latest() == "public", "no new version before the backfill is done")

            // The old version keeps writing meanwhile; the trigger fills those rows.
            try await db.execute("INSERT INTO items (n) VALUES (100001), (100002)")
            try await db.execute("UPDATE items SET n = -1 WHERE id = 19999")

            try await db.migrator.resumeBackfill(options: .init(batchSize: 5000))
            // Resumed after the checkpoint: the pages the table had at start, once. Rows that
            // moved into free space further on (the last page's) are set again, to the same value.
            let resumed = try await db.query("SELECT rows::text || '|' || done::text FROM baton.backfills")
            let parts = (resumed.first ?? "").split(separator: "|")
            #expect(parts.count == 2 && (20000..<20400).contains(Int(parts[0]) ?? 0) && parts[1] == "true", "\(resumed)")
            #expect(try await db.query("SELECT count(*) FROM items WHERE twice IS DISTINCT FROM n * 2", as: "public_02_double") == ["0"])
            #expect(try await db.query("SELECT twice FROM items WHERE id = 19999", as: "public_02_double") == ["-2"])
            try await db.migrator.complete()
            #expect(try await db.query("SELECT count(*) FROM items WHERE twice = n * 2") == ["20002"])
        }
    }

    /// Batches are page ranges, so a table rewritten mid-backfill (VACUUM FULL) has rows in
    /// pages already done: the backfill notices the new file and starts over on it.
    @Test func aTableRewrittenMidBackfillIsFilledCompletely() async throws {
        try await MigrationDatabase.with("""
            CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL);
            INSERT INTO items SELECT g, g FROM generate_series(1, 20000) g;
            """) { db in
            let session = try await PostgresSession.connect(url: db.url)
            let migration = try Migration.parse(
                #"{"name": "02_double", "operations": [{"add_column": {"table": "items", "up": "n * 2", "column": {"name": "twice", "type": "int"}}}]}"#, file: "02.json")
            let backfill = Task { try await Migrator(session: session).start(migration, options: .init(batchSize: 500, delay: .milliseconds(30))) }
            do {
                var saved = 0
                _ = try await eventually(timeout: .seconds(5)) {
                    saved = Int(try await db.query("SELECT coalesce(sum(rows), 0) FROM baton.backfills").first ?? "0") ?? 0
                    return saved >= 5000
                }
                try #require(saved >= 5000 && saved < 20000)
                try await db.execute("VACUUM FULL items")
                try await backfill.value
            } catch {
                backfill.cancel()
                _ = try? await backfill.value
                await session.close()
                throw error
            }
            await session.close()
            #expect(try await db.query("SELECT count(*) FROM items WHERE twice IS DISTINCT FROM n * 2", as: "public_02_double") == ["0"])
        }
    }

    @Test func tableWithoutPrimaryKeyIsBackfilledByCtidWhileTheAppWrites() async throws {
        try await MigrationDatabase.with("""
            CREATE TABLE events (kind text, n int);
            INSERT INTO events SELECT 'k' || (g % 7), g FROM generate_series(1, 30000) g;
            """) { db in
            let writer = Task {
                var written = 0
                let connection = try await PostgresSession.connect(url: db.url)
                do {
                    while !Task.isCancelled {
                        try await connection.execute("INSERT INTO events VALUES ('new', 7)")
                        try await connection.execute("UPDATE events SET n = n + 1 WHERE n = \(1000 + written)")
                        written += 1
                    }
                } catch {}
                await connection.close()
                return written
            }
            let migration = try await db.start("""
                {"name": "03_kind", "operations": [{"alter_column": {"table": "events", "column": "n", "type": "bigint", "nullable": false,
                  "up": "coalesce(n, 0)::bigint * 10", "down": "(n / 10)::int"}}]}
                """, options: .init(batchSize: 500, delay: .milliseconds(2)))
            writer.cancel()
            let written = try await writer.value
            #expect(written > 0, "the app wrote during the backfill")
            let new = db.version(migration)
            #expect(try await db.query("SELECT count(*) FROM events WHERE n IS DISTINCT FROM (SELECT 1)", as: new).count == 1)
            let wrong = try await db.query("SELECT count(*) FROM events e WHERE e._baton_new_n IS DISTINCT FROM e.n::bigint * 10")
            #expect(wrong == ["0"], "every row, old or written during the backfill, has n * 10")
            #expect(try await db.query("SELECT count(*) FROM events", as: new) == [String(30000 + written)])
            try await db.migrator.complete()
            #expect(try await db.query("SELECT data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'events' AND column_name = 'n'") == ["bigint"])
        }
    }

    /// An application transaction holding rows: start's DDL (and any batch meeting the rows) gives
    /// up its lock request after the short lock_timeout, so it never queues everyone behind it,
    /// and retries until the transaction is gone, instead of failing the migration.
    @Test func appTransactionHoldingRowsMakesStartBackOffAndRetry() async throws {
        try await MigrationDatabase.with("""
            CREATE TABLE items (id int PRIMARY KEY, n int);
            INSERT INTO items SELECT g, g FROM generate_series(1, 3000) g;
            """) { db in
            let holder = try await PostgresSession.connect(url: db.url)
            try await holder.execute("BEGIN")
            try await holder.execute("SELECT * FROM items WHERE id = 1500 FOR UPDATE")
            let impatient = try await PostgresSession.connect(url: db.url, lockTimeout: .milliseconds(50))
            let release = Task {
                try await Task.sleep(for: .milliseconds(600))
                try await holder.execute("COMMIT")
                await holder.close()
            }
            let started = ContinuousClock.now
            let migration = try Migration.parse(
                #"{"name": "04_neg", "operations": [{"add_column": {"table": "items", "up": "-n", "column": {"name": "neg", "type": "int", "nullable": false}}}]}"#, file: "test.json")
            do {
                try await Migrator(session: impatient).start(migration, options: .init(batchSize: 1000))
            } catch {
                await impatient.close()
                throw error
            }
            await impatient.close()
            try await release.value
            #expect(ContinuousClock.now - started >= .milliseconds(500), "the batch waited for the app's lock to go")
            #expect(try await db.query("SELECT count(*) FROM items WHERE neg = -n", as: "public_04_neg") == ["3000"])
        }
    }

    /// An `up` that reads a column this migration computes cannot be set by the batch itself;
    /// the backfill then touches rows so the triggers run in order. Plain ones are set inline.
    @Test func upReadingAComputedColumnRunsThroughTheTriggers() async throws {
        try await MigrationDatabase.with("""
            CREATE TABLE items (id int PRIMARY KEY, n int);
            INSERT INTO items SELECT g, g FROM generate_series(1, 2500) g;
            """) { db in
            let chained = try Migration.parse("""
                {"name": "05_chain", "operations": [
                  {"add_column": {"table": "items", "up": "n * 2", "column": {"name": "twice", "type": "int"}}},
                  {"add_column": {"table": "items", "up": "twice + 1", "column": {"name": "more", "type": "int", "nullable": false}}}]}
                """, file: "test.json")
            #expect(try await db.migrator.plan(chained).backfills.map(\.inline) == [false])
            let plain = try Migration.parse(#"{"name": "06_plain", "operations": [{"add_column": {"table": "items", "up": "n * 2", "column": {"name": "twice", "type": "int"}}}]}"#, file: "test.json")
            #expect(try await db.migrator.plan(plain).backfills.map(\.inline) == [true])

            try await db.migrator.start(chained, options: .init(batchSize: 1000))
            #expect(try await db.query("SELECT count(*) FROM items WHERE twice = n * 2 AND more = n * 2 + 1", as: "public_05_chain") == ["2500"])
        }
    }
}
