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

extension CreateTable {
    /// A new table is invisible to the old version, so it is created as it will stay.
    func plan(_ planner: inout MigrationPlanner) throws {
        if planner.version.table(name) != nil || planner.catalog.tables[name] != nil {
            throw planner.error("name", "table '\(name)' already exists")
        }
        var definitions = try columns.enumerated().map { index, column in
            try column.definition(planner, field: "columns[\(index)]")
        }
        let primaryKey = columns.filter(\.pk).map(\.name)
        if !primaryKey.isEmpty { definitions.append("PRIMARY KEY (\(primaryKey.map(SQL.ident).joined(separator: ", ")))") }
        for (index, constraint) in constraints.enumerated() {
            let list = constraint.columns.map(SQL.ident).joined(separator: ", ")
            let name = "CONSTRAINT \(SQL.ident(constraint.name))"
            switch constraint.type {
            case "unique": definitions.append("\(name) UNIQUE (\(list))")
            case "primary_key": definitions.append("\(name) PRIMARY KEY (\(list))")
            case "check":
                guard let check = constraint.check else { throw planner.error("constraints[\(index)].check", "a check constraint needs 'check'") }
                definitions.append("\(name) CHECK (\(check))")
            default:
                let target = try planner.table(constraint.referencedTable ?? "", field: "constraints[\(index)].references.table")
                let columns = try constraint.referencedColumns.map { try planner.column($0, of: target, field: "constraints[\(index)].references.columns").physical }
                definitions.append("\(name) FOREIGN KEY (\(list)) REFERENCES \(planner.qualified(target.physical)) (\(columns.map(SQL.ident).joined(separator: ", ")))")
            }
        }
        planner.atStart(Statement(
            "CREATE TABLE \(planner.qualified(name)) (\n  \(definitions.joined(separator: ",\n  "))\n)",
            lock: "none (new table)\(columns.contains { $0.references != nil } ? "; SHARE ROW EXCLUSIVE on referenced tables, brief" : "")"))
        if let comment { planner.atStart(Statement("COMMENT ON TABLE \(planner.qualified(name)) IS \(SQL.literal(comment))", lock: "none (new table)")) }
        for column in columns {
            if let comment = column.comment {
                planner.atStart(Statement("COMMENT ON COLUMN \(planner.qualified(name)).\(SQL.ident(column.name)) IS \(SQL.literal(comment))", lock: "none (new table)"))
            }
        }
        planner.onRollback(Statement("DROP TABLE IF EXISTS \(planner.qualified(name))", lock: "ACCESS EXCLUSIVE on \(name) (nobody else uses it)"))
        planner.createdTables.insert(name)
        planner.version.tables.append(.init(name: name, physical: name, columns: columns.map { .init(name: $0.name, physical: $0.name) }))
    }
}
