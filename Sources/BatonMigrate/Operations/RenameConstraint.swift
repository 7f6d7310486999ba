import BatonCore

public struct RenameConstraint: Sendable, Equatable {
    public var table: String
    public var from: String
    public var to: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "from", "to"])
        table = try reader.required("table")
        from = try reader.required("from")
        to = try reader.required("to")
    }
}
