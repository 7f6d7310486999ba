import BatonCore

public struct AddColumn: Sendable, Equatable {
    public var table: String
    public var column: Column
    /// SQL that fills the new column for existing rows and for rows written by the old version.
    public var up: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "column", "up"])
        table = try reader.required("table")
        guard let column = try reader.child("column") else { throw reader.error(nil, "missing 'column'") }
        self.column = try Column(column)
        up = try reader.string("up")
        if !self.column.nullable && self.column.defaultValue == nil && up == nil && self.column.generated == nil {
            throw reader.error("column", "a NOT NULL column without a default needs 'up' to fill existing rows")
        }
    }
}
