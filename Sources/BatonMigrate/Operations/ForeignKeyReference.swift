import BatonCore

/// What a foreign key points at and how it reacts, as pgroll writes it on a column
/// (`name`, `table`, `column`, …) or in a table constraint (`table`, `columns`, …).
public struct ForeignKeyReference: Sendable, Equatable {
    public static let actions = ["NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"]
    /// PostgreSQL parses MATCH PARTIAL but does not implement it.
    public static let matchTypes = ["SIMPLE", "FULL"]

    /// The constraint's name, for a column's reference (a table constraint names itself).
    public var name: String?
    public var table: String
    public var columns: [String]
    public var onDelete: String
    public var onUpdate: String
    public var matchType: String
    /// `ON DELETE SET NULL (columns)`: only these columns are set.
    public var onDeleteSetColumns: [String]
    public var deferral: Deferral

    /// A column's `references`.
    init(column reader: YAMLReader) throws {
        try reader.allowKeys(["name", "table", "column", "on_delete", "on_update", "match_type", "deferrable", "initially_deferred"])
        name = try reader.required("name")
        table = try reader.required("table")
        columns = [try reader.required("column")]
        onDeleteSetColumns = []
        deferral = try Deferral(reader)
        (onDelete, onUpdate, matchType) = try Self.behaviour(reader)
    }

    /// A table constraint's `references`.
    init(constraint reader: YAMLReader) throws {
        try reader.allowKeys(["table", "columns", "on_delete", "on_update", "match_type", "on_delete_set_columns"])
        name = nil
        table = try reader.required("table")
        columns = try reader.strings("columns") ?? []
        if columns.isEmpty { throw reader.error("columns", "expected the referenced columns") }
        onDeleteSetColumns = try reader.strings("on_delete_set_columns") ?? []
        deferral = Deferral()
        (onDelete, onUpdate, matchType) = try Self.behaviour(reader)
        if !onDeleteSetColumns.isEmpty && !["SET NULL", "SET DEFAULT"].contains(onDelete) {
            throw reader.error("on_delete_set_columns", "needs on_delete SET NULL or SET DEFAULT, not \(onDelete)")
        }
    }

    private static func behaviour(_ reader: YAMLReader) throws -> (String, String, String) {
        func choice(_ key: String, _ allowed: [String], _ fallback: String, _ why: String = "") throws -> String {
            let value = (try reader.expression(key) ?? fallback).uppercased()
            guard allowed.contains(value) else { throw reader.error(key, "expected one of \(allowed.joined(separator: ", ")), got '\(value)'\(why)") }
            return value
        }
        return (try choice("on_delete", actions, "NO ACTION"), try choice("on_update", actions, "NO ACTION"),
                try choice("match_type", matchTypes, "SIMPLE", " (PostgreSQL does not implement MATCH PARTIAL)"))
    }

    /// `REFERENCES "s"."t" ("c") MATCH m ON DELETE a [(cols)] ON UPDATE b [DEFERRABLE …]`, with
    /// the referenced table and columns (and the set columns, of `own` table) as physical names.
    func clause(_ planner: MigrationPlanner, field: String, own: [String: String]) throws -> String {
        let target = try planner.table(table, field: field + ".table")
        let referenced = try columns.map { SQL.ident(try planner.column($0, of: target, field: field + (name == nil ? ".columns" : ".column")).physical) }
        var clause = "REFERENCES \(planner.qualified(target.physical)) (\(referenced.joined(separator: ", "))) MATCH \(matchType) ON DELETE \(onDelete)"
        if !onDeleteSetColumns.isEmpty {
            let set = try onDeleteSetColumns.map { column -> String in
                guard let physical = own[column] else { throw planner.error(field + ".on_delete_set_columns", "'\(column)' is not one of the constraint's columns") }
                return SQL.ident(physical)
            }
            clause += " (\(set.joined(separator: ", ")))"
        }
        return clause + " ON UPDATE \(onUpdate)" + deferral.sql
    }
}

/// `deferrable` and `initially_deferred` of a constraint.
public struct Deferral: Sendable, Equatable {
    public var deferrable = false
    public var initiallyDeferred = false

    init() {}

    init(_ reader: YAMLReader) throws {
        deferrable = try reader.bool("deferrable") ?? false
        initiallyDeferred = try reader.bool("initially_deferred") ?? false
        if initiallyDeferred && !deferrable { throw reader.error("initially_deferred", "needs deferrable: true") }
    }

    var sql: String { deferrable ? " DEFERRABLE INITIALLY \(initiallyDeferred ? "DEFERRED" : "IMMEDIATE")" : "" }
}

extension YAMLReader {
    /// Per-column SQL (`up`/`down` of multi-column operations), empty ones left out as absent.
    func expressionMap(_ key: String) throws -> [String: String]? {
        try stringMap(key).map { $0.filter { !$0.value.allSatisfy(\.isWhitespace) } }
    }

    /// An SQL fragment (up, down, a check, a predicate, a default): pgroll reads an empty one as
    /// absent, so "" is nil here too instead of an empty clause.
    func expression(_ key: String) throws -> String? {
        guard let value = try string(key), !value.allSatisfy(\.isWhitespace) else { return nil }
        return value
    }
}
