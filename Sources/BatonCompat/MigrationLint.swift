import BatonCore
import BatonMigrate
import Foundation

/// Flags migration steps that would break the release still running or hold a long blocking
/// lock if run as written, each with the safe way to do it. Reads plain SQL files and pgroll
/// files (whose `sql` operations are what can hide such steps: Baton runs the others safely).
public enum MigrationLint {
    struct Rule {
        var id: String
        var level: Finding.Level
        var pattern: NSRegularExpression
        /// Matches that make the statement safe after all.
        var unless: NSRegularExpression?
        var message: String
        /// A statement it flags (the rule catalogue's example).
        var example: String
    }

    static func regex(_ pattern: String) -> NSRegularExpression {
        try! NSRegularExpression(pattern: pattern, options: [.caseInsensitive, .dotMatchesLineSeparators])
    }

    static let rules: [Rule] = [
        Rule(id: "drop-column", level: .err, pattern: regex(#"\bALTER\s+TABLE\b.*\bDROP\s+(COLUMN\s+)?(?!CONSTRAINT\b)"#), unless: regex(#"\bDROP\s+(DEFAULT|NOT\s+NULL|IDENTITY|EXPRESSION|CONSTRAINT)\b"#),
             message: "drops a column the running release still reads and writes; use a drop_column operation (removed at complete)", example: "ALTER TABLE orders DROP COLUMN legacy;"),
        Rule(id: "rename-column", level: .err, pattern: regex(#"\bALTER\s+TABLE\b.*\bRENAME\s+(COLUMN\s+)?\S+\s+TO\b"#), unless: regex(#"\bRENAME\s+(CONSTRAINT|TO)\b"#),
             message: "renames a column under the running release; use a rename_column operation (both names work until complete)", example: "ALTER TABLE orders RENAME COLUMN total TO amount;"),
        Rule(id: "rename-table", level: .err, pattern: regex(#"\bALTER\s+TABLE\s+(IF\s+EXISTS\s+)?\S+\s+RENAME\s+TO\b"#), unless: nil,
             message: "renames a table under the running release; use a rename_table operation", example: "ALTER TABLE orders RENAME TO purchases;"),
        Rule(id: "drop-table", level: .err, pattern: regex(#"\bDROP\s+TABLE\b"#), unless: nil,
             message: "drops a table the running release may use; use a drop_table operation (dropped at complete)", example: "DROP TABLE old_orders;"),
        Rule(id: "truncate", level: .err, pattern: regex(#"\bTRUNCATE\b"#), unless: nil,
             message: "empties a table under the running release, with an ACCESS EXCLUSIVE lock", example: "TRUNCATE orders;"),
        Rule(id: "change-type", level: .err, pattern: regex(#"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b"#), unless: nil,
             message: "changes a column's type: usually a table rewrite under ACCESS EXCLUSIVE, and the old release breaks; use alter_column with type, up and down", example: "ALTER TABLE orders ALTER COLUMN amount TYPE bigint;"),
        Rule(id: "set-not-null", level: .warn, pattern: regex(#"\bALTER\s+COLUMN\s+\S+\s+SET\s+NOT\s+NULL\b"#), unless: nil,
             message: "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated CHECK (col IS NOT NULL) exists; add the check NOT VALID, VALIDATE it, then SET NOT NULL (alter_column with nullable: false does this)", example: "ALTER TABLE orders ALTER COLUMN customer SET NOT NULL;"),
        Rule(id: "add-column-not-null", level: .err, pattern: regex(#"\bADD\s+(COLUMN\s+)?\S+\s+[^,;]*\bNOT\s+NULL\b"#), unless: regex(#"\bDEFAULT\b"#),
             message: "adds a NOT NULL column without a default: it fails on a non-empty table and the old release's inserts break; use add_column with up (or a default)", example: "ALTER TABLE orders ADD COLUMN region text NOT NULL;"),
        Rule(id: "volatile-default", level: .warn, pattern: regex(#"\bADD\s+(COLUMN\s+)?\S+\s+[^,;]*\bDEFAULT\s+"# + SQL.volatileCallPattern), unless: nil,
             message: "a volatile default rewrites the whole table under ACCESS EXCLUSIVE; add the column without it and backfill (add_column with up)", example: "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();"),
        Rule(id: "create-index", level: .err, pattern: regex(#"\bCREATE\s+(UNIQUE\s+)?INDEX\b"#), unless: regex(#"\bINDEX\s+CONCURRENTLY\b"#),
             message: "CREATE INDEX without CONCURRENTLY blocks writes to the table until it is built; use CREATE INDEX CONCURRENTLY (create_index does)", example: "CREATE INDEX orders_customer ON orders (customer);"),
        Rule(id: "drop-index", level: .warn, pattern: regex(#"\bDROP\s+INDEX\b"#), unless: regex(#"\bDROP\s+INDEX\s+CONCURRENTLY\b"#),
             message: "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the table; use DROP INDEX CONCURRENTLY (drop_index does)", example: "DROP INDEX orders_old;"),
        Rule(id: "constraint-not-valid", level: .warn, pattern: regex(#"\bADD\s+(CONSTRAINT\s+\S+\s+)?(CHECK|FOREIGN\s+KEY)\b"#), unless: regex(#"\bNOT\s+VALID\b"#),
             message: "adding a CHECK or FOREIGN KEY validates every row under lock; add it NOT VALID, then VALIDATE CONSTRAINT separately (create_constraint does)", example: "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0);"),
        Rule(id: "unique-constraint", level: .warn, pattern: regex(#"\bADD\s+(CONSTRAINT\s+\S+\s+)?(UNIQUE|PRIMARY\s+KEY)\b"#), unless: regex(#"\bUSING\s+INDEX\b"#),
             message: "adding a UNIQUE or PRIMARY KEY constraint builds its index under lock; build a unique index CONCURRENTLY, then ADD CONSTRAINT … USING INDEX", example: "ALTER TABLE orders ADD CONSTRAINT one_code UNIQUE (code);"),
        Rule(id: "table-rewrite", level: .warn, pattern: regex(#"\b(VACUUM\s+FULL|CLUSTER)\b"#), unless: nil,
             message: "rewrites the table under ACCESS EXCLUSIVE; run it in a maintenance window, or use pg_repack", example: "VACUUM FULL orders;"),
        Rule(id: "lock-table", level: .warn, pattern: regex(#"\bLOCK\s+(TABLE\s+)?\S+"#), unless: regex(#"\bIN\s+(ACCESS\s+SHARE|ROW\s+SHARE)\s+MODE\b"#),
             message: "an explicit table lock blocks the running release; avoid it", example: "LOCK TABLE orders;"),
    ]

    /// A file of SQL, or a pgroll migration (.json/.yaml/.yml).
    public static func lint(path: String) throws -> [Finding] {
        guard let data = FileManager.default.contents(atPath: path) else { throw BatonError(.notFound, "\(path): cannot read the file") }
        let text = String(decoding: data, as: UTF8.self)
        if Migration.isMigrationFile(path) {
            let migration = try Migration.load(path: path)
            var findings: [Finding] = []
            for (index, operation) in migration.operations.enumerated() {
                guard case .sql(let sql) = operation else { continue }
                let phase = sql.onComplete ? "up (on complete)" : "up"
                findings += lint(sql: sql.up, place: "\(path): operations[\(index)].sql.\(phase)", firstLine: nil)
            }
            return findings
        }
        return lint(sql: text, place: path, firstLine: 1)
    }

    /// Statement by statement; `place:line` when lines are known.
    public static func lint(sql: String, place: String, firstLine: Int?) -> [Finding] {
        var findings: [Finding] = []
        var createdTables = Set<String>()
        for (statement, line) in statements(sql) {
            let text = statement as NSString
            let range = NSRange(location: 0, length: text.length)
            if let created = regex(#"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?("?[\w.]+"?)"#).firstMatch(in: statement, range: range) {
                createdTables.insert(text.substring(with: created.range(at: 2)).lowercased().replacingOccurrences(of: "\"", with: ""))
                continue
            }
            // A table made in the same file has no readers yet.
            if let target = regex(#"\b(?:ALTER\s+TABLE|ON)\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?("?[\w.]+"?)"#).firstMatch(in: statement, range: range),
               createdTables.contains(text.substring(with: target.range(at: 1)).lowercased().replacingOccurrences(of: "\"", with: "")) {
                continue
            }
            for rule in rules where rule.pattern.firstMatch(in: statement, range: range) != nil {
                if let unless = rule.unless, unless.firstMatch(in: statement, range: range) != nil { continue }
                let at = firstLine.map { "\(place):\($0 + line - 1)" } ?? place
                let excerpt = statement.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
                findings.append(Finding(id: rule.id, level: rule.level, direction: .none, operation: at, pointer: excerpt.count > 80 ? String(excerpt.prefix(77)) + "..." : excerpt, message: rule.message))
            }
        }
        return findings
    }

    /// Splits SQL into statements (quotes, dollar quotes and comments respected), each with the
    /// line it starts on, counting from 1; comments are left out.
    static func statements(_ sql: String) -> [(String, Int)] {
        var result: [(String, Int)] = []
        var current = ""
        var line = 1
        var startLine = 1
        let characters = Array(sql)
        var index = 0
        func flush() {
            let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { result.append((trimmed, startLine)) }
            current = ""
        }
        while index < characters.count {
            let c = characters[index]
            if current.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && !c.isWhitespace { startLine = line }
            if c == "-" && index + 1 < characters.count && characters[index + 1] == "-" {
                while index < characters.count && characters[index] != "\n" { index += 1 }
                continue
            }
            if c == "/" && index + 1 < characters.count && characters[index + 1] == "*" {
                index += 2
                while index + 1 < characters.count && !(characters[index] == "*" && characters[index + 1] == "/") {
                    if characters[index] == "\n" { line += 1 }
                    index += 1
                }
                index += 2
                continue
            }
            if c == "'" || c == "\"" {
                current.append(c)
                index += 1
                while index < characters.count && characters[index] != c {
                    if characters[index] == "\n" { line += 1 }
                    current.append(characters[index])
                    index += 1
                }
                if index < characters.count { current.append(c) }
                index += 1
                continue
            }
            if c == "$", let end = characters[(index + 1)...].firstIndex(of: "$"),
               characters[(index + 1)..<end].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                let tag = String(characters[index...end])
                current += tag
                index = end + 1
                while index < characters.count && !String(characters[index..<min(index + tag.count, characters.count)]).elementsEqual(tag) {
                    if characters[index] == "\n" { line += 1 }
                    current.append(characters[index])
                    index += 1
                }
                current += tag
                index += tag.count
                continue
            }
            if c == ";" { flush(); index += 1; continue }
            if c == "\n" { line += 1 }
            current.append(c)
            index += 1
        }
        flush()
        return result
    }
}
