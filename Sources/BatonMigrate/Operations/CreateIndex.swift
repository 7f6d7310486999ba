import BatonCore

public struct CreateIndex: Sendable, Equatable {
    public static let methods = ["btree", "hash", "gist", "spgist", "gin", "brin"]
    public var name: String
    public var table: String
    public var columns: [String]
    public var method: String
    public var unique: Bool
    public var predicate: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "table", "columns", "method", "unique", "predicate", "storage_parameters"])
        name = try reader.required("name")
        table = try reader.required("table")
        // pgroll has written columns as a list of names, a map of name → options, and a list of
        // {column: name}; all three are read.
        if !reader.has("columns") {
            throw reader.error(nil, "missing 'columns'")
        } else if let map = try? reader.child("columns") {
            columns = map.keys
        } else if let names = try? reader.strings("columns") {
            columns = names
        } else {
            columns = try (try reader.list("columns") ?? []).map { item in
                try item.allowKeys(["column", "collate", "sort", "nulls", "opclass"])
                return try item.required("column")
            }
        }
        if columns.isEmpty { throw reader.error("columns", "expected at least one column") }
        method = try reader.string("method") ?? "btree"
        guard Self.methods.contains(method) else {
            throw reader.error("method", "expected one of \(Self.methods.joined(separator: ", ")), got '\(method)'")
        }
        unique = try reader.bool("unique") ?? false
        predicate = try reader.string("predicate")
    }
}
