import BatonCore

public struct RenameColumn: Sendable, Equatable {
    public var table: String
    public var from: String
    public var to: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "from", "to"])
        table = try reader.required("table")
        from = try reader.required("from")
        to = try reader.required("to")
        if from == to { throw reader.error("to", "the new name is the old one") }
    }
}
