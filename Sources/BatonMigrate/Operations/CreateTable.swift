import BatonCore

public struct CreateTable: Sendable, Equatable {
    public var name: String
    public var columns: [Column]
    public var constraints: [TableConstraint]
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
        let items = try reader.list("constraints") ?? []
        constraints = try items.map { item in
            try item.allowKeys(TableConstraint.keys)
            return try TableConstraint(item, kinds: [.unique, .check, .primaryKey, .foreignKey, .exclude])
        }
        for (item, constraint) in zip(items, constraints) {
            for column in constraint.columns where !seen.contains(column) {
                throw item.error("columns", "no column '\(column)' in table '\(name)'")
            }
            for column in constraint.index.includeColumns where !seen.contains(column) {
                throw item.error("index_parameters.include_columns", "no column '\(column)' in table '\(name)'")
            }
            if constraint.kind == .primaryKey && self.columns.contains(where: \.pk) {
                throw item.error("type", "the primary key is already given by the columns' pk; give it one way")
            }
        }
        if constraints.filter({ $0.kind == .primaryKey }).count > 1, let second = zip(items, constraints).filter({ $0.1.kind == .primaryKey }).last?.0 {
            throw second.error("type", "a table has one primary key")
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
        // Known before its definition, so a foreign key may point at the table itself.
        planner.createdTables.insert(name)
        planner.version.tables.append(.init(name: name, physical: name, columns: columns.map { .init(name: $0.name, physical: $0.name) }))
        var definitions = try columns.enumerated().map { index, column in
            try column.definition(planner, field: "columns[\(index)]")
        }
        let primaryKey = columns.filter(\.pk).map(\.name)
        if !primaryKey.isEmpty { definitions.append("PRIMARY KEY (\(primaryKey.map(SQL.ident).joined(separator: ", ")))") }
        for (index, constraint) in constraints.enumerated() {
            definitions.append(try constraint.definition(planner, field: "constraints[\(index)]"))
        }
        planner.atStart(Statement(
            "CREATE TABLE \(planner.qualified(name)) (\n  \(definitions.joined(separator: ",\n  "))\n)",
            lock: "none (new table)\(columns.contains { $0.references != nil } || constraints.contains { $0.kind == .foreignKey } ? "; SHARE ROW EXCLUSIVE on referenced tables, brief" : "")"))
        if let comment { planner.atStart(Statement("COMMENT ON TABLE \(planner.qualified(name)) IS \(SQL.literal(comment))", lock: "none (new table)")) }
        for column in columns {
            if let comment = column.comment {
                planner.atStart(Statement("COMMENT ON COLUMN \(planner.qualified(name)).\(SQL.ident(column.name)) IS \(SQL.literal(comment))", lock: "none (new table)"))
            }
        }
        planner.onRollback(Statement("DROP TABLE IF EXISTS \(planner.qualified(name))", lock: "ACCESS EXCLUSIVE on \(name) (nobody else uses it)"))
    }
}
