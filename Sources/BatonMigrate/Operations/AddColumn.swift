import Foundation
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
        up = try reader.expression("up")
    }
}

extension AddColumn {
    /// The column is added under a shadow name, so the old version's tables look as before; its
    /// constraints are added NOT VALID; `up` fills it for old-version writes and existing rows.
    func plan(_ planner: inout MigrationPlanner) throws {
        var table = try planner.table(self.table, field: "table")
        if table.column(column.name) != nil { throw planner.error("column.name", "table '\(table.name)' already has a column '\(column.name)'") }
        if planner.createdTables.contains(table.physical) {
            // Rows an earlier sql operation put in the new table get `up` before NOT NULL holds.
            var added = column
            if up != nil && !column.pk { added.nullable = true }
            let definition = try added.definition(planner, field: "column", inlinePrimaryKey: true)
            let target = planner.qualified(table.physical)
            planner.atStart(Statement("ALTER TABLE \(target) ADD COLUMN \(definition)", lock: "none (new table)"))
            if let up {
                planner.atStart(Statement("UPDATE \(target) SET \(SQL.ident(column.name)) = (\(up))", lock: "none (new table)"))
                if !column.nullable && !column.pk {
                    planner.atStart(Statement("ALTER TABLE \(target) ALTER COLUMN \(SQL.ident(column.name)) SET NOT NULL", lock: "none (new table)"))
                }
            }
            if let comment = column.comment {
                planner.atStart(Statement("COMMENT ON COLUMN \(planner.qualified(table.physical)).\(SQL.ident(column.name)) IS \(SQL.literal(comment))", lock: "none (new table)"))
            }
            table.columns.append(.init(name: column.name, physical: column.name))
            planner.replace(table)
            return
        }
        if column.pk { throw planner.error("column.pk", "a primary key cannot be added to a table in use; create a unique index instead") }
        // A table this migration creates has no rows yet; one in use has.
        if !column.nullable && column.defaultValue == nil && up == nil && column.generated == nil && !column.type.lowercased().hasSuffix("serial") {
            throw planner.error("column", "a NOT NULL column without a default needs 'up' to fill existing rows")
        }
        let shadow = try planner.shadowName(column.name, field: "column.name")
        try planner.claim(table, shadow, field: "column.name")
        var definition = [SQL.ident(shadow), column.type]
        var lock = Statement.briefExclusive
        if let generated = column.generatedSQL {
            definition.append(generated)
            lock = "ACCESS EXCLUSIVE on \(table.physical) while the table is rewritten"
        }
        if let defaultValue = column.defaultValue {
            definition.append("DEFAULT \(defaultValue)")
            // A volatile default gives every existing row its own value: a table rewrite.
            if defaultValue.range(of: SQL.volatileCallPattern, options: [.regularExpression, .caseInsensitive]) != nil {
                lock = "ACCESS EXCLUSIVE on \(table.physical) while the table is rewritten (volatile default)"
            }
        }
        planner.atStart(Statement("ALTER TABLE \(planner.qualified(table.physical)) ADD COLUMN \(definition.joined(separator: " "))", lock: lock))
        planner.onRollback(Statement("ALTER TABLE \(planner.qualified(table.physical)) DROP COLUMN IF EXISTS \(SQL.ident(shadow))", lock: Statement.briefExclusive))
        if let comment = column.comment {
            planner.atStart(Statement("COMMENT ON COLUMN \(planner.qualified(table.physical)).\(SQL.ident(shadow)) IS \(SQL.literal(comment))", lock: "SHARE UPDATE EXCLUSIVE on \(table.physical)"))
        }
        table.columns.append(.init(name: column.name, physical: shadow))
        planner.replace(table)
        if !column.nullable { planner.addNotNull(on: table, column: shadow, name: planner.helperName("not_null")) }
        if column.unique { planner.addUnique(on: table, name: "\(table.name)_\(column.name)_key", columns: [shadow]) }
        if let check = column.check {
            planner.addCheck(on: table, name: check.name, expression: SQL.renamingIdentifiers(in: check.constraint, [column.name: shadow]), noInherit: check.noInherit)
        }
        if let references = column.references {
            try planner.addForeignKey(on: table, name: references.name ?? "", columns: [shadow], references: references, logical: [column.name], field: "column.references")
        }
        if let up {
            try planner.addTrigger(on: table, up: [(shadow, up)], down: [])
        }
        planner.renames.append(Statement("ALTER TABLE \(planner.qualified(table.physical)) RENAME COLUMN \(SQL.ident(shadow)) TO \(SQL.ident(column.name))", lock: Statement.briefExclusive))
    }
}
