import BatonCore

public struct AlterColumn: Sendable, Equatable {
    public var table: String
    public var column: String
    public var type: String?
    public var nullable: Bool?
    /// `.some(nil)` drops the default.
    public var defaultValue: String??
    public var unique: String?
    public var check: CheckConstraint?
    public var references: ForeignKeyReference?
    public var comment: String??
    /// Old column → new column, and back.
    public var up: String?
    public var down: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "column", "type", "nullable", "default", "unique", "check", "references", "comment", "up", "down", "name"])
        if reader.has("name") {
            throw reader.error("name", "renaming moved to its own operation: {\"rename_column\": {\"table\": …, \"from\": …, \"to\": …}}")
        }
        table = try reader.required("table")
        column = try reader.required("column")
        type = try reader.string("type")
        nullable = try reader.bool("nullable")
        defaultValue = reader.has("default") ? .some(try reader.string("default").flatMap { $0 == "null" || $0 == "~" ? nil : $0 }) : nil
        if let unique = try reader.child("unique") {
            try unique.allowKeys(["name"])
            self.unique = try unique.required("name")
        }
        check = try reader.child("check").map(CheckConstraint.init)
        references = try reader.child("references").map(ForeignKeyReference.init)
        comment = reader.has("comment") ? .some(try reader.string("comment")) : nil
        up = try reader.string("up")
        down = try reader.string("down")
        if type == nil && nullable == nil && defaultValue == nil && unique == nil && check == nil && references == nil && comment == nil {
            throw reader.error(nil, "nothing to change: give type, nullable, default, unique, check, references or comment")
        }
    }
}
