import BatonCore
import Foundation

/// A migration in pgroll's file format (JSON or YAML), so a pgroll user's files run unchanged:
/// `{"name": "02_add_description", "operations": [{"add_column": {...}}, ...]}`.
public struct Migration: Sendable, Equatable {
    public var name: String
    /// Names the version schema (`SCHEMA_VERSIONSCHEMA`) instead of the name, as pgroll's
    /// `version_schema` does for file names that are too long or not identifiers.
    public var versionSchema: String?
    public var operations: [Operation]
    /// Where it was read from, for error messages.
    public var file: String

    public static func load(path: String) throws -> Migration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.invalidConfiguration, "\(path): cannot read the migration file")
        }
        let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try parse(String(decoding: data, as: UTF8.self), file: path, defaultName: base)
    }

    /// Parses and validates; every error names the file, line, operation index and field.
    public static func parse(_ text: String, file: String, defaultName: String? = nil) throws -> Migration {
        let root = try YAMLReader.root(text: text, file: file)
        // `$schema` points editors at pgroll's JSON schema; it means nothing to the migration.
        try root.allowKeys(["name", "version_schema", "operations", "$schema"])
        guard let name = try root.string("name") ?? defaultName, !name.isEmpty else {
            throw root.error(nil, "missing 'name' (or name the file after the migration)")
        }
        guard let items = try root.list("operations") else {
            throw root.error(nil, "missing 'operations': a list such as [{\"add_column\": {...}}]")
        }
        // The version schema is SCHEMA_NAME, checked against PostgreSQL's 63-byte limit at plan
        // time, when the schema is known.
        let versionSchema = try root.expression("version_schema")
        let (suffix, field) = versionSchema.map { ($0, "version_schema") } ?? (name, "name")
        guard suffix.utf8.count <= 62, suffix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }) else {
            throw root.error(field, "'\(suffix)' must be at most 62 letters, digits, '_', '-' or '.', since it names the version schema\(versionSchema == nil ? " (or give version_schema)" : "")")
        }
        return Migration(name: name, versionSchema: versionSchema, operations: try items.map(Operation.parse), file: file)
    }
}

extension Migration {
    /// Whether `path` names a migration file (.json, .yaml, .yml) rather than, say, plain SQL.
    public static func isMigrationFile(_ path: String) -> Bool {
        [".json", ".yaml", ".yml"].contains { path.hasSuffix($0) }
    }

    /// The migration files of a directory, in name order.
    public static func files(in directory: String) throws -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw BatonError(.notFound, "\(directory): cannot read the directory")
        }
        return names.filter(isMigrationFile).sorted().map { directory + "/" + $0 }
    }
}
