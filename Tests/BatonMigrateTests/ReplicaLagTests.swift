import BatonCore
@testable import BatonMigrate
import BatonTesting
import Foundation
import Synchronization
import Testing

/// `--max-replica-lag` against a real streaming replica of the test cluster: while the replica
/// does not replay, the backfill waits; when it replays again, the backfill finishes, and rows
/// the application inserted meanwhile are filled too.
@Suite(.serialized, .postgres) struct ReplicaLagTests {
    @Test func backfillWaitsWhileAReplicaIsBehind() async throws {
        let cluster = try #require(SharedPostgres.cluster)
        let standby = try cluster.startStandby()
        defer { standby.stop() }
        try await MigrationDatabase.with("""
            CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL);
            INSERT INTO items SELECT g, g FROM generate_series(1, 20000) g;
            """) { db in
            // The replica is streaming once it has replayed the database's creation.
            try #require(try await eventually { try cluster.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1" })
            try standby.psql("SELECT pg_wal_replay_pause()")

            let waited = Mutex(0)
            let session = try await PostgresSession.connect(url: db.url)
            let migrator = Migrator(session: session) { event in
                if case .backfill(let progress) = event, progress.replicaLag != nil { waited.withLock { $0 += 1 } }
            }
            let migration = try Migration.parse(
                #"{"name": "02_doubled", "operations": [{"add_column": {"table": "items", "up": "n * 2", "column": {"name": "doubled", "type": "int"}}}]}"#,
                file: "02.json")
            let backfill = Task { try await migrator.start(migration, options: .init(batchSize: 500, maxReplicaLag: 512 * 1024)) }
            do {
                #expect(await eventually { waited.withLock { $0 } > 0 }, "the backfill waits for the paused replica")
                try await db.execute("INSERT INTO items SELECT g, g FROM generate_series(20001, 20100) g")
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await db.migrator.status().inFlight.first?.status == .backfilling, "still waiting")
                try standby.psql("SELECT pg_wal_replay_resume()")
                try await backfill.value
            } catch {
                // A backfill that waits for a replica ends only when cancelled (or it catches up).
                backfill.cancel()
                try? standby.psql("SELECT pg_wal_replay_resume()")
                _ = try? await backfill.value
                await session.close()
                throw error
            }
            await session.close()
            #expect(try await db.query("SELECT count(*) FROM items WHERE doubled = n * 2", as: "public_02_doubled") == ["20100"])
        }
    }
}

@Suite struct BatchSizerTests {
    @Test func batchesFollowTheTargetTimeWithinBounds() {
        var sizer = BatchSizer(size: 1000, target: .milliseconds(50))
        sizer.record(rows: 1000, took: .milliseconds(10))
        #expect(sizer.size == 2000, "at most doubles, though 5000 rows would take 50 ms")
        sizer.record(rows: 2000, took: .milliseconds(40))
        #expect(sizer.size == 2500)
        sizer.record(rows: 2500, took: .milliseconds(500))
        #expect(sizer.size == 1250, "at most halves")
        sizer.record(rows: 0, took: .milliseconds(1))
        #expect(sizer.size == 2500, "an empty range grows the next batch")
        var small = BatchSizer(size: 150, target: .milliseconds(50))
        small.record(rows: 150, took: .seconds(10))
        #expect(small.size == BatchSizer.bounds.lowerBound)
        var fixed = BatchSizer(size: 700, target: nil)
        fixed.record(rows: 700, took: .seconds(3))
        #expect(fixed.size == 700)
    }
}
