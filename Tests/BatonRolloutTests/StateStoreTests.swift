import BatonCore
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// The deploy lock and journal of each `StateStore`, in-process: the file store on a temporary
/// directory, the PostgreSQL store on a real server.
@Suite(.serialized) struct StateStoreTests {
    @Test func theFileLockRefusesASecondHolderNamingTheFirst() async throws {
        let directory = TemporaryDirectory.make(prefix: "baton-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = FileStateStore(stateDirectory: directory)
        #expect(try await store.lockHolder() == nil)
        let holder = LockHolder(who: "ci@runner-3", pid: 4242, directory: "/builds/app", command: "deploy 5.4", since: Date(timeIntervalSince1970: 1_800_000_000))
        let lock = try await store.lock(holder)
        #expect(try await store.lockHolder() == holder)

        let refused = await #expect(throws: BatonError.self) { _ = try await store.lock(.current("deploy 5.5")) }
        #expect(refused?.message == "another baton deploy or rollback holds the lock: ci@runner-3 (pid 4242, deploy 5.4, in /builds/app) since 2027-01-15T08:00:00Z; wait for it or stop it first")
        let broken = await #expect(throws: BatonError.self) { _ = try await store.breakLock() }
        #expect(broken?.message.contains("kill 4242") == true)

        await lock.release()
        #expect(try await store.lockHolder() == nil)
        #expect(try await store.breakLock() == "the lock is free")
        let again = try await store.lock(.current("deploy 5.5"))
        await again.release()
    }

    @Test func postgresLocksArePerServiceAndALostLockStopsTheJournal() async throws {
        let database = try await PostgresCluster.start(under: TemporaryDirectory.make(prefix: "baton-state"))
        defer { database.stop() }
        let a = PostgresStateStore(url: database.url(), service: "a")
        let b = PostgresStateStore(url: database.url(), service: "b")
        let lockA = try await a.lock(.current("deploy 1"))
        // Another service in the same database sees no holder and takes its own lock.
        #expect(try await b.lockHolder() == nil)
        #expect(try await b.breakLock() == "the lock of b is free")
        let lockB = try await b.lock(.current("deploy 2"))
        #expect(try await b.lockHolder()?.command == "deploy 2")
        #expect(try await a.lockHolder()?.command == "deploy 1")

        try await a.append(RolloutEvent(deployment: "d-1", kind: .deployStarted, target: "1"))
        #expect(try await a.events().map(\.deployment) == ["d-1"])
        #expect(try await b.events().isEmpty)

        // A's lock is broken from elsewhere: A's next journal write fails instead of going on.
        let other = PostgresStateStore(url: database.url(), service: "a")
        #expect(try await other.breakLock().hasPrefix("ended the database session of"))
        await #expect(throws: BatonError.self) { try await a.append(RolloutEvent(deployment: "d-1", kind: .message, detail: "after")) }
        #expect(try await other.events().count == 1)
        #expect(try await b.lockHolder()?.command == "deploy 2")
        await lockA.release()
        await lockB.release()
        #expect(try await b.lockHolder() == nil)
    }
}
