import BatonCore

public struct RenameTable: Sendable, Equatable {
    public var from: String
    public var to: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["from", "to"])
        from = try reader.required("from")
        to = try reader.required("to")
        if from == to { throw reader.error("to", "the new name is the old one") }
    }
}
