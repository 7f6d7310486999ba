import BatonCore

public struct CreateConstraint: Sendable, Equatable {
    public var table: String
    public var constraint: TableConstraint
    /// Per column: SQL that makes old-version writes satisfy the constraint, and back.
    public var up: [String: String]
    public var down: [String: String]

    init(_ reader: YAMLReader) throws {
        // pgroll's create_constraint has no exclude, deferral or nulls_not_distinct.
        try reader.allowKeys(TableConstraint.keys.filter { !["exclude", "deferrable", "initially_deferred", "nulls_not_distinct"].contains($0) } + ["table", "up", "down"])
        table = try reader.required("table")
        constraint = try TableConstraint(reader, kinds: [.unique, .check, .foreignKey, .primaryKey])
        // Baton moves the constrained columns to shadow copies, so it must know them.
        if constraint.columns.isEmpty { throw reader.error("columns", "name the columns the constraint covers (for a check: the columns it reads)") }
        up = try reader.expressionMap("up") ?? [:]
        down = try reader.expressionMap("down") ?? [:]
        for column in Set(up.keys).union(down.keys) where !constraint.columns.contains(column) {
            throw reader.error(up[column] != nil ? "up" : "down", "'\(column)' is not one of the constraint's columns (\(constraint.columns.joined(separator: ", ")))")
        }
    }
}

extension CreateConstraint {
    /// Old-version writes may break the new constraint, so it goes on shadow copies of its
    /// columns, which `up` makes satisfy it; complete proves it and swaps the columns in.
    func plan(_ planner: inout MigrationPlanner) throws {
        let name = constraint.name
        let table = try planner.table(self.table, field: "table")
        let existing = planner.catalog.tables[table.physical]?.dependents ?? []
        if planner.catalog.indexNames.contains(name) || existing.contains(where: { $0.name == name }) {
            throw planner.error("name", "a constraint or index '\(name)' already exists")
        }
        if constraint.kind == .primaryKey, let key = existing.first(where: { $0.kind == .primaryKey }) {
            throw planner.error("type", "table '\(table.name)' already has primary key '\(key.name)'; drop it first (drop_multicolumn_constraint)")
        }
        for column in constraint.columns { _ = try planner.column(column, of: table, field: "columns") }
        let nullable: Bool? = constraint.kind == .primaryKey ? false : nil
        let shadows = try planner.shadow(table, constraint.columns.map { .init(column: $0, nullable: nullable, up: up[$0], down: down[$0]) }, field: "columns")
        let updated = try planner.table(self.table, field: "table")
        let shadowed = constraint.columns.map { shadows[$0]! }
        func physical(_ column: String) -> String { shadows[column] ?? updated.column(column)?.physical ?? column }
        for column in constraint.index.includeColumns { _ = try planner.column(column, of: updated, field: "index_parameters.include_columns") }
        switch constraint.kind {
        case .unique, .primaryKey:
            planner.addUnique(
                on: updated, name: name, columns: shadowed, options: constraint.index.indexSQL(physical: physical, nullsNotDistinct: constraint.nullsNotDistinct),
                primaryKey: constraint.kind == .primaryKey, deferral: constraint.deferral)
        case .check:
            planner.addCheck(on: updated, name: name, expression: SQL.renamingIdentifiers(in: constraint.check ?? "true", shadows), noInherit: constraint.noInherit)
        case .foreignKey:
            guard let references = constraint.references else { return }
            var withDeferral = references
            withDeferral.deferral = constraint.deferral
            try planner.addForeignKey(on: updated, name: name, columns: shadowed, references: withDeferral, logical: constraint.columns, field: "references")
        case .exclude:
            return
        }
    }
}
