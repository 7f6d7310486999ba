import BatonCore

public struct DropIndex: Sendable, Equatable {
    public var name: String

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name"])
        name = try reader.required("name")
    }
}
