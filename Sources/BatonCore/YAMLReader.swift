import Yams

/// Reads one YAML mapping with errors that name the file, the line and the field path:
/// `baton.yml:12: rollout.max_unavailable: expected a whole number of 1 or more, got 'two'`.
public struct YAMLReader {
    public let file: String
    public let path: String
    let node: Node

    /// Parses `text` and expects a mapping at the top.
    public static func root(text: String, file: String) throws -> YAMLReader {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw BatonError(.invalidConfiguration, "\(file): not valid YAML: \(Self.describe(error))")
        }
        guard let node, case .mapping = node else {
            throw BatonError(.invalidConfiguration, "\(file):1: expected a mapping of settings at the top level")
        }
        return YAMLReader(file: file, path: "", node: node)
    }

    init(file: String, path: String, node: Node) {
        self.file = file
        self.path = path
        self.node = node
    }

    public var line: Int { (node.mark?.line ?? 0) }

    /// An error about this node (or its `key`), located at its line.
    public func error(_ key: String? = nil, _ message: String) -> BatonError {
        let at = key.flatMap { mapping?[$0] }.map { YAMLReader(file: file, path: path, node: $0).line } ?? line
        return BatonError(.invalidConfiguration, "\(file):\(at): \(field(key)): \(message)")
    }

    private var mapping: Node.Mapping? { node.mapping }

    private func field(_ key: String?) -> String {
        guard let key else { return path.isEmpty ? "(top level)" : path }
        return path.isEmpty ? key : "\(path).\(key)"
    }

    /// Fails on keys not in `allowed`: a typo must not pass silently.
    public func allowKeys(_ allowed: [String]) throws {
        guard let mapping else { throw error(nil, "expected a mapping") }
        for (key, value) in mapping {
            guard let name = key.string, allowed.contains(name) else {
                throw BatonError(
                    .invalidConfiguration,
                    "\(file):\(YAMLReader(file: file, path: path, node: value).line): \(field(key.string ?? "?")): unknown field; expected one of \(allowed.joined(separator: ", "))"
                )
            }
        }
    }

    public func has(_ key: String) -> Bool { mapping?[key] != nil }

    /// This node as a scalar (for list items).
    public var scalar: String? { node.scalar?.string }

    public func child(_ key: String) throws -> YAMLReader? {
        guard let value = mapping?[key] else { return nil }
        guard case .mapping = value else { throw error(key, "expected a mapping") }
        return YAMLReader(file: file, path: field(key), node: value)
    }

    public func list(_ key: String) throws -> [YAMLReader]? {
        guard let value = mapping?[key] else { return nil }
        guard case .sequence(let sequence) = value else { throw error(key, "expected a list") }
        return sequence.enumerated().map { YAMLReader(file: file, path: "\(field(key))[\($0.offset)]", node: $0.element) }
    }

    /// The string at `key`; nil when it is absent or null (`null`, `~` or empty, unquoted: YAML's
    /// and JSON's null, which pgroll reads as "remove", e.g. `comment: null`).
    public func string(_ key: String) throws -> String? {
        guard let value = mapping?[key] else { return nil }
        guard case .scalar(let scalar) = value else { throw error(key, "expected a string") }
        if scalar.style == .plain, ["null", "Null", "NULL", "~", ""].contains(scalar.string) { return nil }
        return scalar.string
    }

    public func requiredString(_ key: String, example: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw error(nil, "missing '\(key)', e.g. \(key): \(example)") }
        return value
    }

    public func int(_ key: String, min: Int = Int.min, max: Int = Int.max) throws -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text), value >= min, value <= max else {
            let range = max == Int.max ? "of \(min) or more" : "from \(min) to \(max)"
            throw error(key, "expected a whole number \(range), got '\(text)'")
        }
        return value
    }

    public func double(_ key: String, min: Double, max: Double) throws -> Double? {
        guard let text = try string(key) else { return nil }
        guard let value = Double(text), value >= min, value <= max else {
            throw error(key, "expected a number from \(min) to \(max), got '\(text)'")
        }
        return value
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default: throw error(key, "expected true or false, got '\(text)'")
        }
    }

    /// A list of strings.
    public func strings(_ key: String) throws -> [String]? {
        guard let items = try list(key) else { return nil }
        return try items.map { item in
            guard let value = item.scalar else { throw item.error(nil, "expected a string") }
            return value
        }
    }

    /// A string that must be there and not be empty.
    public func required(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw error(nil, "missing '\(key)'") }
        return value
    }

    /// The mapping keys in file order.
    public var keys: [String] { (mapping?.keys.compactMap(\.string)) ?? [] }

    public func duration(_ key: String) throws -> Duration? {
        guard let text = try string(key) else { return nil }
        guard let value = Duration(parsing: text) else { throw error(key, "expected a duration such as 500ms, 30s or 2m, got '\(text)'") }
        return value
    }

    /// `NAME: value` pairs; a null value (as `string` reads it) leaves its name out.
    public func stringMap(_ key: String) throws -> [String: String]? {
        guard let reader = try child(key) else { return nil }
        var result: [String: String] = [:]
        for (name, value) in reader.mapping ?? .init([]) {
            guard let name = name.string, case .scalar = value else {
                throw reader.error(nil, "expected NAME: value pairs")
            }
            result[name] = try reader.string(name)
        }
        return result
    }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)"
        default:
            return "\(error)"
        }
    }
}
