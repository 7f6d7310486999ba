import BatonCore

public struct DropMultiColumnConstraint: Sendable, Equatable {
    public var table: String
    public var name: String
    public var up: [String: String]
    public var down: [String: String]

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "name", "up", "down"])
        table = try reader.required("table")
        name = try reader.required("name")
        up = try reader.stringMap("up") ?? [:]
        guard let down = try reader.stringMap("down") else { throw reader.error(nil, "missing 'down'") }
        self.down = down
    }
}
