import BatonCore

public struct DropColumn: Sendable, Equatable {
    public var table: String
    public var column: String
    /// Fills the column for rows the new version writes while the old one still reads it.
    public var down: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "column", "down"])
        table = try reader.required("table")
        column = try reader.required("column")
        down = try reader.string("down")
    }
}
