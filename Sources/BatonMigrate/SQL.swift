/// Quoting and small rewrites of SQL text. Every name that reaches SQL goes through `ident`, so
/// tables called `select` or `a";drop` are just names.
public enum SQL {
    public static func ident(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    public static func qualified(_ schema: String, _ name: String) -> String { ident(schema) + "." + ident(name) }

    /// Functions whose value differs row by row: as a column default they make ADD COLUMN write
    /// every row (a table rewrite). One list for the planner's lock notes and the lint.
    public static let volatileFunctions = ["random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "timeofday", "nextval", "txid_current"]

    /// `\b(random|…)\s*\(`: a call of one of `volatileFunctions`.
    public static let volatileCallPattern = #"\b("# + volatileFunctions.joined(separator: "|") + #")\s*\("#

    public static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }

    /// Replaces column names in a user's expression (a check, an index predicate): bare
    /// identifiers compare case-insensitively as PostgreSQL folds them, quoted ones exactly;
    /// string literals and dollar-free text stay as written.
    public static func renamingIdentifiers(in expression: String, _ names: [String: String]) -> String {
        guard !names.isEmpty else { return expression }
        var output = ""
        let characters = Array(expression)
        var index = 0
        func isStart(_ c: Character) -> Bool { c.isLetter || c == "_" }
        func isPart(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "$" }
        while index < characters.count {
            let c = characters[index]
            if c == "'" {
                var end = index + 1
                while end < characters.count {
                    if characters[end] == "'" {
                        if end + 1 < characters.count && characters[end + 1] == "'" { end += 2; continue }
                        break
                    }
                    end += 1
                }
                output += String(characters[index...min(end, characters.count - 1)])
                index = end + 1
            } else if c == "\"" {
                var end = index + 1
                var name = ""
                while end < characters.count {
                    if characters[end] == "\"" {
                        if end + 1 < characters.count && characters[end + 1] == "\"" { name.append("\""); end += 2; continue }
                        break
                    }
                    name.append(characters[end])
                    end += 1
                }
                let previousIsDot = output.last == "."
                output += (!previousIsDot ? names[name].map(ident) : nil) ?? String(characters[index...min(end, characters.count - 1)])
                index = end + 1
            } else if isStart(c) && (index == 0 || !isPart(characters[index - 1])) {
                var end = index
                while end < characters.count && isPart(characters[end]) { end += 1 }
                let word = String(characters[index..<end])
                let previousIsDot = output.last == "."
                let nextIsCall = characters[end...].first(where: { $0 != " " }) == "("
                output += (!previousIsDot && !nextIsCall ? names[word.lowercased()].map(ident) : nil) ?? word
                index = end
            } else {
                output.append(c)
                index += 1
            }
        }
        return output
    }
}
