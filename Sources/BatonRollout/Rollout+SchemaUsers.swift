import BatonCore
import Foundation

extension Rollout {
    /// The nodes whose running release uses `versionSchema`, for `baton migrate complete --fleet`:
    /// a release says which version schema it reads and writes through in a file inside its
    /// directory (baton.yml's `compat.database_schema`). A node that cannot be asked counts, as
    /// it may; a release without the file does not.
    public func nodesUsing(versionSchema: String) async throws -> [String] {
        let status = try await FleetStatus.gather(self)
        var users: [String] = []
        for node in status.nodes {
            if let unreachable = node.unreachable {
                users.append("node \(node.name) (cannot tell: \(unreachable))")
                continue
            }
            for instance in node.instances where instance.process == "running" {
                let file = releases.path(of: instance.release) + "/" + config.compat.databaseSchema
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
                if text.trimmingCharacters(in: .whitespacesAndNewlines) == versionSchema {
                    users.append("node \(node.name) (release \(instance.release))")
                }
            }
        }
        return users
    }
}
