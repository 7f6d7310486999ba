/// The tables as one version of the application sees them: logical names over physical tables
/// and columns. A version schema holds one view per table, so an app that sets its
/// `search_path` to the schema reads and writes through the names it was built for.
public struct VersionSchema: Sendable, Codable, Equatable {
    public struct Table: Sendable, Codable, Equatable {
        public var name: String
        public var physical: String
        public var columns: [Column]

        public func column(_ name: String) -> Column? { columns.first { $0.name == name } }
    }

    public struct Column: Sendable, Codable, Equatable {
        public var name: String
        public var physical: String
    }

    public var tables: [Table]

    public func table(_ name: String) -> Table? { tables.first { $0.name == name } }

    /// The version that matches the catalog exactly, as the old version sees it.
    init(_ catalog: Catalog) {
        tables = catalog.tables.values.sorted { $0.name < $1.name }.map { table in
            Table(name: table.name, physical: table.name, columns: table.columns.map { Column(name: $0.name, physical: $0.name) })
        }
    }

    /// This version with the physical names it will have once `earlier`, a migration in flight
    /// before it, completes: complete gives every table and column of a version its logical name.
    func renamed(byCompleting earlier: VersionSchema) -> VersionSchema {
        var result = self
        for (index, table) in tables.enumerated() {
            guard let final = earlier.tables.first(where: { $0.physical == table.physical }) else { continue }
            result.tables[index].physical = final.name
            result.tables[index].columns = table.columns.map { column in
                .init(name: column.name, physical: final.columns.first { $0.physical == column.physical }?.name ?? column.physical)
            }
        }
        return result
    }

    /// Creates the schema and its views. Simple single-table views are updatable in PostgreSQL,
    /// and take the base table's defaults, so an app writes through them as through the table.
    func createStatements(schema: String, base: String) -> [Statement] {
        [Statement("CREATE SCHEMA \(SQL.ident(schema))", lock: "none")]
            + tables.map { table in
                let columns = table.columns.map { "\(SQL.ident($0.physical)) AS \(SQL.ident($0.name))" }.joined(separator: ", ")
                return Statement(
                    "CREATE VIEW \(SQL.qualified(schema, table.name)) AS SELECT \(columns) FROM \(SQL.qualified(base, table.physical))",
                    lock: "ACCESS SHARE on \(table.physical)")
            }
    }
}
