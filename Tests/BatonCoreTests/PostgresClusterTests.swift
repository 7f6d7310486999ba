import BatonCore
import Foundation
import Testing

@Suite(.serialized) struct PostgresClusterTests {
    @Test func startsAnswersAndLeavesNothingBehind() async throws {
        let parent = "/tmp/baton-pg-test-\(UInt32.random(in: 0...UInt32.max))"
        let cluster = try await PostgresCluster.start(under: parent)
        #expect(try cluster.psql("select 40 + 2") == "42")
        try cluster.psql("create table t (id int primary key); insert into t values (1), (2)")
        #expect(try cluster.psql("select count(*) from t") == "2")
        #expect(cluster.url().hasPrefix("postgres://baton@127.0.0.1:"))
        cluster.stop()
        #expect(!FileManager.default.fileExists(atPath: cluster.directory))
        // The port is free again.
        #expect(throws: BatonError.self) { try cluster.psql("select 1") }
        try? FileManager.default.removeItem(atPath: parent)
    }

    @Test func badSQLIsAClearError() async throws {
        let cluster = try await PostgresCluster.start(under: "/tmp")
        defer { cluster.stop() }
        do {
            try cluster.psql("selec 1")
            Issue.record("expected an error")
        } catch let error as BatonError {
            #expect(error.message.contains("psql failed"))
            #expect(error.message.contains("syntax error"))
        }
    }
}
