import BatonCore

public struct CreateConstraint: Sendable, Equatable {
    public var table: String
    public var name: String
    public var type: String
    public var columns: [String]
    public var check: String?
    public var referencedTable: String?
    public var referencedColumns: [String]
    /// Per column: SQL that makes old-version writes satisfy the constraint, and back.
    public var up: [String: String]
    public var down: [String: String]

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "name", "type", "columns", "check", "references", "up", "down", "no_inherit", "deferrable", "initially_deferred", "nulls_not_distinct"])
        table = try reader.required("table")
        name = try reader.required("name")
        type = try reader.required("type")
        guard ["unique", "check", "foreign_key"].contains(type) else {
            throw reader.error("type", "expected unique, check or foreign_key, got '\(type)'")
        }
        columns = try reader.strings("columns") ?? []
        if columns.isEmpty { throw reader.error(nil, "missing 'columns'") }
        check = try reader.string("check")
        if type == "check" && check == nil { throw reader.error(nil, "a check constraint needs 'check'") }
        if let references = try reader.child("references") {
            try references.allowKeys(["table", "columns", "on_delete", "on_update", "match_type"])
            referencedTable = try references.required("table")
            referencedColumns = try references.strings("columns") ?? []
        } else {
            referencedTable = nil
            referencedColumns = []
        }
        if type == "foreign_key" && referencedTable == nil { throw reader.error(nil, "a foreign_key constraint needs 'references'") }
        up = try reader.stringMap("up") ?? [:]
        down = try reader.stringMap("down") ?? [:]
        for column in Set(up.keys).union(down.keys) where !columns.contains(column) {
            throw reader.error(up[column] != nil ? "up" : "down", "'\(column)' is not one of the constraint's columns (\(columns.joined(separator: ", ")))")
        }
    }
}

extension CreateConstraint {
    /// Old-version writes may break the new constraint, so it goes on shadow copies of its
    /// columns, which `up` makes satisfy it; complete proves it and swaps the columns in.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        if planner.catalog.indexNames.contains(name) || (planner.catalog.tables[table.physical]?.dependents.contains { $0.name == name } ?? false) {
            throw planner.error("name", "a constraint or index '\(name)' already exists")
        }
        for column in columns { _ = try planner.column(column, of: table, field: "columns") }
        let shadows = try planner.shadow(table, columns.map { .init(column: $0, up: up[$0], down: down[$0]) }, field: "columns")
        let updated = try planner.table(self.table, field: "table")
        let shadowed = columns.map { shadows[$0]! }
        switch type {
        case "unique":
            planner.addUnique(on: updated, name: name, columns: shadowed)
        case "check":
            planner.addCheck(on: updated, name: name, expression: SQL.renamingIdentifiers(in: check ?? "true", shadows))
        default:
            let target = try planner.table(referencedTable ?? "", field: "references.table")
            let referenced = try referencedColumns.map { try planner.column($0, of: target, field: "references.columns").physical }
            planner.addForeignKey(on: updated, name: name, columns: shadowed, references: target.physical, referencedColumns: referenced, onDelete: "NO ACTION")
        }
    }
}
