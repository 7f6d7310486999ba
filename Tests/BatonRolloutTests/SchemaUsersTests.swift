import BatonCore
import BatonMigrate
import BatonRollout
import BatonTesting
import Foundation
import Testing

/// `baton migrate complete --fleet`: refused while a node runs a release whose
/// database-schema file names the old version; allowed once the fleet runs the new release.
@Suite(.serialized) struct SchemaUsersTests {
    @Test func completeWaitsForTheFleetToLeaveTheOldVersion() async throws {
        let database = try await PostgresCluster.start(under: TemporaryDirectory.make(prefix: "baton-schema-users"))
        defer { database.stop() }
        let fleet = try await TestFleet.make(nodes: 2)
        let store = ReleaseStore(stateDirectory: fleet.config.stateDirectory)
        try "public\n".write(toFile: store.path(of: "5.3") + "/database-schema", atomically: true, encoding: .utf8)
        try "public_02_title\n".write(toFile: store.path(of: "5.4") + "/database-schema", atomically: true, encoding: .utf8)
        try database.psql("CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL)")
        let session = try await PostgresSession.connect(url: database.url())
        do {
            try await fleet.rollout().deploy(release: "5.3", resume: false)
            let migrator = Migrator(session: session)
            try await migrator.start(try Migration.parse(#"{"name": "02_title", "operations": [{"rename_column": {"table": "products", "from": "name", "to": "title"}}]}"#, file: "02.json"))
            let rollout = fleet.rollout()
            #expect(try await rollout.nodesUsing(versionSchema: "public") == ["node web1 (release 5.3)", "node web2 (release 5.3)"])
            let refused = await #expect(throws: BatonError.self) {
                try await migrator.complete { try await rollout.nodesUsing(versionSchema: $0) }
            }
            #expect(refused?.message == "the old version public is still in use by node web1 (release 5.3), node web2 (release 5.3); upgrade those servers first, or pass --force")
            try await rollout.deploy(release: "5.4", resume: false)
            try await migrator.complete { try await rollout.nodesUsing(versionSchema: $0) }
            #expect(try await migrator.status().history.map(\.name) == ["02_title"])
        } catch {
            await session.close()
            await fleet.cleanup()
            throw error
        }
        await session.close()
        await fleet.cleanup()
    }
}
