/// What one schema's tables look like in the database right now: the ground truth a migration
/// is planned against, so a reference to a missing table or column fails before anything runs.
public struct Catalog: Sendable, Codable, Equatable {
    public struct Column: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var nullable: Bool
        public var defaultValue: String?
        public var comment: String?
    }

    /// A constraint or index that involves some of the table's columns.
    public struct Dependent: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable { case primaryKey, unique, check, foreignKey, referencedBy, exclusion, index }
        public var name: String
        public var kind: Kind
        public var columns: [String]
        /// `pg_get_indexdef` or `pg_get_constraintdef`, to build the same on a shadow column.
        public var definition: String?
    }

    public struct Table: Sendable, Codable, Equatable {
        public var name: String
        public var columns: [Column]
        public var dependents: [Dependent]
        /// `REPLICA IDENTITY` as ALTER TABLE writes it: DEFAULT, FULL, NOTHING or USING INDEX "i"
        /// (nil in plans stored before Baton read it).
        public var replicaIdentity: String?

        public func column(_ name: String) -> Column? { columns.first { $0.name == name } }
    }

    public var schema: String
    public var tables: [String: Table]

    public init(schema: String, tables: [String: Table]) {
        self.schema = schema
        self.tables = tables
    }

    /// Every index name in the schema (indexes share one namespace per schema).
    public var indexNames: Set<String> {
        Set(tables.values.flatMap { $0.dependents.filter { $0.kind != .check && $0.kind != .foreignKey && $0.kind != .referencedBy }.map(\.name) })
    }

    static func read(_ session: PostgresSession, schema: String) async throws -> Catalog {
        let s = SQL.literal(schema)
        var tables: [String: Table] = [:]
        for row in try await session.rows("""
            SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum),
                   CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
                     -- an identity index that was dropped leaves 'i' behind, which acts as NOTHING
                     WHEN 'i' THEN coalesce('USING INDEX ' || quote_ident((SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = c.oid AND x.indisreplident)), 'NOTHING')
                     ELSE 'DEFAULT' END
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
            WHERE n.nspname = \(s) AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum
            """, as: (String, String, String, Bool, String?, String?, String).self)
        {
            let (name, column, type, nullable, defaultValue, comment, replicaIdentity) = row
            tables[name, default: Table(name: name, columns: [], dependents: [], replicaIdentity: replicaIdentity)]
                .columns.append(Column(name: column, type: type, nullable: nullable, defaultValue: defaultValue, comment: comment))
        }
        // Constraints (and the indexes behind them), plain indexes and foreign keys pointing here.
        for row in try await session.rows("""
            SELECT c.relname::text, k.conname::text, k.contype::text,
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i))::text,
                   pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(s) AND k.contype IN ('p', 'u', 'c', 'f', 'x')
            UNION ALL
            SELECT c.relname::text, k.conname::text, 'r',
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i))::text,
                   pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(s) AND k.contype = 'f'
            UNION ALL
            SELECT c.relname::text, i.relname::text, 'i',
                   -- key columns in order, then columns used only by expressions or the predicate
                   array_to_json(ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(n, o) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n ORDER BY u.o)
                     || ARRAY(SELECT a.attname FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid AND d.refobjsubid > 0 AND NOT d.refobjsubid = ANY (x.indkey::int2[])))::text,
                   pg_get_indexdef(x.indexrelid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = \(s) AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype IN ('p', 'u', 'x'))
            ORDER BY 1, 2
            """, as: (String, String, String, String, String?).self)
        {
            let (tableName, name, type, columnList, definition) = row
            guard var table = tables[tableName] else { continue }
            let columns = (try? JSONDecoder().decode([String].self, from: Data(columnList.utf8))) ?? []
            let kind: Dependent.Kind
            switch type {
            case "p": kind = .primaryKey
            case "u": kind = .unique
            case "c": kind = .check
            case "f": kind = .foreignKey
            case "r": kind = .referencedBy
            case "x": kind = .exclusion
            default: kind = .index
            }
            table.dependents.append(Dependent(name: name, kind: kind, columns: columns, definition: definition))
            tables[tableName] = table
        }
        return Catalog(schema: schema, tables: tables)
    }
}

import Foundation
