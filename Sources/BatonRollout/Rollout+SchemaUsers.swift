import BatonCore
import Foundation

extension Rollout {
    /// What may still use `versionSchema`, for `baton migrate complete --fleet`: nodes whose
    /// running release names it in a file inside its directory (baton.yml's
    /// `compat.database_schema`), and anything Baton cannot tell about (a node it cannot ask, a
    /// release without the file or not in this machine's store, a deployment in progress,
    /// which may yet put the old release back). It fails closed: complete cannot be undone.
    public func nodesUsing(versionSchema: String) async throws -> [String] {
        let status = try await FleetStatus.gather(self)
        var users: [String] = []
        if let interrupted = status.interrupted { users.append("an interrupted deployment (\(interrupted))") }
        if let holder = status.lockHolder { users.append("a deployment in progress (\(holder))") }
        for node in status.nodes {
            if let unreachable = node.unreachable {
                users.append("node \(node.name) (cannot tell: \(unreachable))")
                continue
            }
            for instance in node.instances where instance.process == "running" {
                let file = releases.path(of: instance.release) + "/" + config.compat.databaseSchema
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    users.append("node \(node.name) (cannot tell: release \(instance.release) has no \(config.compat.databaseSchema) in \(releases.directory))")
                    continue
                }
                if text.trimmingCharacters(in: .whitespacesAndNewlines) == versionSchema {
                    users.append("node \(node.name) (release \(instance.release))")
                }
            }
        }
        return users
    }
}
