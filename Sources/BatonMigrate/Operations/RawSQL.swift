import BatonCore

public struct RawSQL: Sendable, Equatable {
    public var up: String
    public var down: String?
    /// Run at complete instead of start.
    public var onComplete: Bool

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["up", "down", "onComplete"])
        up = try reader.required("up")
        down = try reader.expression("down")
        onComplete = try reader.bool("onComplete") ?? false
        if onComplete && down != nil { throw reader.error("down", "an onComplete operation cannot be rolled back, so it takes no 'down'") }
    }
}

extension RawSQL {
    /// Runs as written, in the phase's transaction; tables and columns it creates join the new
    /// version. Baton cannot know what it locks.
    func plan(_ planner: inout MigrationPlanner) throws {
        let lock = "whatever this SQL takes"
        if onComplete {
            planner.finals.append(Statement(up, lock: lock, script: true))
        } else {
            planner.atStart(Statement(up, lock: lock, script: true))
            if let down { planner.onRollback(Statement(down, lock: lock, script: true)) }
        }
    }
}
