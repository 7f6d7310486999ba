/// One compatibility problem (or note): a stable id, how bad it is, which pairing it concerns,
/// where, and why in one sentence.
public struct Finding: Sendable, Codable, Equatable, Hashable {
    public enum Level: String, Sendable, Codable, Comparable, CaseIterable {
        /// Info < warn < err, for --fail-on.
        case info = "INFO", warn = "WARN", err = "ERR"

        var rank: Int { self == .info ? 0 : self == .warn ? 1 : 2 }
        public static func < (a: Level, b: Level) -> Bool { a.rank < b.rank }
    }

    /// Which pairing breaks. For APIs: backward = a client built for OLD calling a server running
    /// NEW; forward = a client built for NEW calling a server running OLD. For messages:
    /// backward = a consumer on NEW reading what a producer on OLD wrote; forward = the reverse.
    /// Lint findings have none.
    public enum Direction: String, Sendable, Codable {
        case backward, forward, none
    }

    public var id: String
    public var level: Level
    public var direction: Direction
    /// `GET /projects/{id}`, a message name, or a file:line for lint findings.
    public var operation: String
    /// JSON pointer into the document (new side for what was added, old side otherwise).
    public var pointer: String
    public var message: String

    public init(id: String, level: Level, direction: Direction, operation: String, pointer: String, message: String) {
        self.id = id
        self.level = level
        self.direction = direction
        self.operation = operation
        self.pointer = pointer
        self.message = message
    }
}
