import BatonCore

/// A column's `check`.
public struct CheckConstraint: Sendable, Equatable {
    public var name: String
    public var constraint: String
    public var noInherit: Bool

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "constraint", "no_inherit"])
        name = try reader.required("name")
        guard let constraint = try reader.expression("constraint") else { throw reader.error("constraint", "expected the check's expression") }
        self.constraint = constraint
        noInherit = try reader.bool("no_inherit") ?? false
    }
}
