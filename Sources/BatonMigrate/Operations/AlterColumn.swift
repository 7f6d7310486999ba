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
    /// Older pgroll files rename with alter_column's `name`; read as a rename_column, or as the
    /// name the shadow column takes at complete when other changes come with it.
    public var name: String?

    init(_ reader: YAMLReader) throws {
        try reader.allowKeys(["table", "column", "type", "nullable", "default", "unique", "check", "references", "comment", "up", "down", "name"])
        table = try reader.required("table")
        column = try reader.required("column")
        type = try reader.expression("type")
        nullable = try reader.bool("nullable")
        defaultValue = reader.has("default") ? .some(try reader.expression("default")) : nil
        if let unique = try reader.child("unique") {
            try unique.allowKeys(["name"])
            self.unique = try unique.required("name")
        }
        check = try reader.child("check").map(CheckConstraint.init)
        references = try reader.child("references").map(ForeignKeyReference.init(column:))
        comment = reader.has("comment") ? .some(try reader.string("comment")) : nil
        up = try reader.expression("up")
        down = try reader.expression("down")
        name = try reader.expression("name")
        if name == column { throw reader.error("name", "the new name is the old one") }
        if name == nil && type == nil && nullable == nil && defaultValue == nil && unique == nil && check == nil && references == nil && comment == nil {
            throw reader.error(nil, "nothing to change: give name, type, nullable, default, unique, check, references or comment")
        }
    }
}

extension AlterColumn {
    /// A comment changes in place; anything else goes through a shadow column carrying the new
    /// type, nullability, default and constraints, kept in step by `up` and `down`.
    func plan(_ planner: inout MigrationPlanner) throws {
        let table = try planner.table(self.table, field: "table")
        let current = try planner.column(column, of: table, field: "column")
        if let name, table.column(name) != nil { throw planner.error("name", "table '\(table.name)' already has a column '\(name)'") }
        if let name, type == nil && nullable == nil && defaultValue == nil && unique == nil && check == nil && references == nil && comment == nil {
            return try RenameColumn(table: self.table, from: column, to: name).plan(&planner)
        }
        if name == nil && type == nil && nullable == nil && defaultValue == nil && unique == nil && check == nil && references == nil, let comment {
            try planner.claim(table, current.physical, field: "column")
            let target = "\(planner.qualified(table.physical)).\(SQL.ident(current.physical))"
            let previous = planner.catalog.tables[table.physical]?.column(current.physical)?.comment.map(SQL.literal) ?? "NULL"
            planner.atStart(Statement("COMMENT ON COLUMN \(target) IS \(comment.map(SQL.literal) ?? "NULL")", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)"))
            planner.onRollback(Statement("COMMENT ON COLUMN \(target) IS \(previous)", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)"))
            return
        }
        let shadows = try planner.shadow(
            table, [.init(column: column, type: type, nullable: nullable, defaultValue: defaultValue, up: up, down: down, rename: name)], field: "column")
        let shadow = shadows[column]!
        let updated = try planner.table(self.table, field: "table")
        let newName = name ?? column
        if let unique { planner.addUnique(on: updated, name: unique, columns: [shadow]) }
        if let check { planner.addCheck(on: updated, name: check.name, expression: SQL.renamingIdentifiers(in: check.constraint, [newName: shadow]), noInherit: check.noInherit) }
        if let references {
            try planner.addForeignKey(on: updated, name: references.name ?? "", columns: [shadow], references: references, logical: [newName], field: "references")
        }
        if let comment {
            planner.atStart(Statement("COMMENT ON COLUMN \(planner.qualified(table.physical)).\(SQL.ident(shadow)) IS \(comment.map(SQL.literal) ?? "NULL")", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)"))
        }
    }
}
