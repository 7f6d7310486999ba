import BatonCore

public struct CreateTable: Sendable, Equatable {
    public struct Constraint: Sendable, Equatable {
        public var name: String
        public var type: String
        public var columns: [String]
        public var check: String?
        /// For a foreign_key: the referenced table and columns.
        public var referencedTable: String?
        public var referencedColumns: [String]
    }

    public var name: String
    public var columns: [Column]
    public var constraints: [Constraint]
    public var comment: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["name", "columns", "constraints", "comment"])
        name = try reader.required("name")
        guard let columns = try reader.list("columns"), !columns.isEmpty else { throw reader.error(nil, "missing 'columns'") }
        self.columns = try columns.map(Column.init)
        var seen = Set<String>()
        for (index, column) in self.columns.enumerated() where !seen.insert(column.name).inserted {
            throw columns[index].error("name", "column '\(column.name)' is defined twice")
        }
        constraints = try (try reader.list("constraints") ?? []).map { item in
            try item.allowKeys(["name", "type", "columns", "check", "references", "deferrable", "initially_deferred", "no_inherit", "nulls_not_distinct", "index_parameters", "exclude"])
            let type = try item.required("type")
            guard ["unique", "check", "primary_key", "foreign_key"].contains(type) else {
                throw item.error("type", "expected unique, check, primary_key or foreign_key, got '\(type)'")
            }
            let columns = try item.strings("columns") ?? []
            for column in columns where !seen.contains(column) {
                throw item.error("columns", "no column '\(column)' in table '\(try reader.required("name"))'")
            }
            let references = try item.child("references")
            try references?.allowKeys(["table", "columns", "on_delete", "on_update", "match_type"])
            if type == "foreign_key" && references == nil { throw item.error(nil, "a foreign_key constraint needs 'references'") }
            return Constraint(
                name: try item.required("name"), type: type, columns: columns, check: try item.string("check"),
                referencedTable: try references?.required("table"), referencedColumns: try references?.strings("columns") ?? []
            )
        }
        comment = try reader.string("comment")
    }
}
