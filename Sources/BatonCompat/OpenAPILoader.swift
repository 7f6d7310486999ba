import BatonCore
import Foundation
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat
import Yams

/// Reads an OpenAPI 3.0 or 3.1 document (YAML or JSON) with OpenAPIKit, converts 3.0 to 3.1,
/// and resolves its `$ref`s (other local files included). Every failure is one line naming the
/// file and where; a document is refused only when it cannot be understood.
public enum OpenAPILoader {
    public static func load(path: String) throws -> LoadedDocument {
        try parse(try readText(path), file: path)
    }

    /// Both releases' documents, read at the same time.
    public static func load(old: String, new: String) async throws -> (old: LoadedDocument, new: LoadedDocument) {
        async let before = load(path: old)
        async let after = load(path: new)
        return try await (before, after)
    }

    private static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.notFound, "\(path): cannot read the file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Text (YAML or JSON) as its top-level object; a syntax error is worded by YAMLReader,
    /// which gives the line.
    private static func read(_ text: String, file: String) throws -> [String: Any]? {
        do {
            return try Self.object(text) as? [String: Any]
        } catch let error as BatonError {
            throw BatonError(.invalidConfiguration, "\(file): \(error.message)")
        } catch {
            _ = try YAMLReader.root(text: text, file: file)
            throw BatonError(.invalidConfiguration, "\(file): not valid YAML or JSON: \(Self.oneLine("\(error)"))")
        }
    }

    public static func parse(_ text: String, file: String) throws -> LoadedDocument {
        // Parsed once for speed; YAMLReader parses again only to word an error with its line.
        let top = try read(text, file: file) ?? [:]
        if top["swagger"] != nil || top["openapi"] as? String == nil || !["3.0", "3.1"].contains(where: { (top["openapi"] as? String ?? "").hasPrefix($0) }) {
            let root = try YAMLReader.root(text: text, file: file)
            if root.has("swagger") {
                throw root.error("swagger", "Swagger 2.0 is not supported; convert the file to OpenAPI 3 first (for example with swagger2openapi)")
            }
            guard let version = try root.string("openapi") else {
                throw root.error(nil, "not an OpenAPI document: expected a top-level 'openapi: 3.0.x' or '3.1.x'")
            }
            throw root.error("openapi", "version '\(version)' is not supported; expected 3.0.x or 3.1.x")
        }
        let version = top["openapi"] as! String
        var preparer = DocumentPreparer(file: file)
        var prepared = try preparer.prepare(top)
        let schemas = SchemaSource(root: prepared, dialect30: version.hasPrefix("3.0"), slots: preparer.slots, placeholderPrefix: preparer.placeholderPrefix)
        // Every schema position now holds a placeholder, so nothing OpenAPIKit decodes refers
        // to the component schemas.
        if var components = prepared["components"] as? [String: Any] {
            components["schemas"] = nil
            prepared["components"] = components
        }
        let json = JSONWriter.data(prepared)
        let document: OpenAPIKit.OpenAPI.Document
        do {
            // Yams' Decoder is several times slower than Foundation's JSONDecoder on big
            // documents (OpenAPIKit tries alternatives), so YAML goes through JSON.
            document = version.hasPrefix("3.0")
                ? try decoder.decode(OpenAPIKit30.OpenAPI.Document.self, from: json).convert(to: .v3_1_0)
                : try decoder.decode(OpenAPIKit.OpenAPI.Document.self, from: json)
        } catch {
            let pretty = OpenAPIKit.OpenAPI.Error(from: error)
            let at = pretty.codingPathString.isEmpty ? "" : " at \(pretty.codingPathString)"
            throw BatonError(.invalidConfiguration, "\(file):\(at): \(Self.oneLine(pretty.localizedDescription))")
        }
        do {
            let webhooks = try document.webhooks.map { (name: $0.key, item: try $0.value.dereferenced(in: document.components)) }
            return LoadedDocument(document: try document.locallyDereferenced(), webhooks: webhooks, schemas: schemas, notes: preparer.notes)
        } catch {
            throw BatonError(.invalidConfiguration, "\(file): unresolvable $ref: \(Self.oneLine("\(error)"))")
        }
    }

    /// A JSON Schema of its own (a message definition): `$defs` and `definitions`, other local
    /// files and recursion resolved as in a document.
    public static func schema(path: String) throws -> SchemaShape {
        let text = try readText(path)
        guard let raw = try read(text, file: path) else {
            throw BatonError(.invalidConfiguration, "\(path):1: (top level): expected a JSON Schema object")
        }
        var preparer = DocumentPreparer(file: path)
        return SchemaSource(root: try preparer.prepareSchema(raw), dialect30: false).rootShape(usage: .message)
    }

    /// Vendor extensions (x-…) play no part in compatibility, and decoding them (every object
    /// read a second time as a dictionary) is most of the load time of a big document.
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.userInfo[OpenAPIKit.VendorExtensionsConfiguration.enabledKey] = false
        return decoder
    }

    /// YAML (or JSON) text as JSON values: dictionaries, arrays, String, Int, Double, Bool and
    /// NSNull. Yams composes with its basic resolver, which leaves every scalar a string, so no
    /// regular expression runs per scalar (most of its load time); `typed` then types plain
    /// scalars as Yams' default resolver would (YAML 1.1), except that a timestamp stays text.
    static func object(_ text: String) throws -> Any {
        if text.first(where: { !$0.isWhitespace }) == "{" {
            return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        }
        guard let node = try Yams.compose(yaml: text, .basic) else { return NSNull() }
        var budget = 5_000_000
        return try value(node, depth: 0, budget: &budget)
    }

    /// `budget` counts the values built: an alias names its anchor's node, so a document of
    /// aliases to aliases expands exponentially (a "billion laughs"); `depth` keeps recursion
    /// off the end of the stack.
    private static func value(_ node: Node, depth: Int, budget: inout Int) throws -> Any {
        budget -= 1
        guard budget > 0, depth < 512 else {
            throw BatonError(.invalidConfiguration, budget > 0 ? "nested more than 512 levels deep" : "its aliases expand to more than 5,000,000 values")
        }
        switch node {
        case .scalar(let scalar):
            return scalar.style == .plain || scalar.style == .any ? typed(scalar.string) : scalar.string
        case .mapping(let mapping):
            var object: [String: Any] = [:]
            var merged: [[String: Any]] = []
            for (key, inner) in mapping {
                if case .scalar(let name) = key, name.string == "<<", name.style == .plain {
                    // A merge key: the named mappings' keys, where this one does not set them.
                    switch try value(inner, depth: depth + 1, budget: &budget) {
                    case let map as [String: Any]: merged.append(map)
                    case let list as [Any]: merged += list.compactMap { $0 as? [String: Any] }
                    default: break
                    }
                    continue
                }
                object[try key.string ?? "\(value(key, depth: depth + 1, budget: &budget))"] = try value(inner, depth: depth + 1, budget: &budget)
            }
            for map in merged { object.merge(map) { mine, _ in mine } }
            return object
        case .sequence(let sequence): return try sequence.map { try value($0, depth: depth + 1, budget: &budget) }
        // The parser replaces an alias by the node its anchor names; only a built tree has these.
        case .alias: return NSNull()
        }
    }

    /// A plain scalar as null, bool, integer, float or text. (The basic resolver has already
    /// named every tag `str`, so an explicit `!!str` on a plain number is not seen: quote it.)
    private static func typed(_ text: String) -> Any {
        switch text {
        case "", "~", "null", "Null", "NULL": return NSNull()
        case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
        case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return Double.infinity
        case "-.inf", "-.Inf", "-.INF": return -Double.infinity
        case ".nan", ".NaN", ".NAN": return Double.nan
        default: break
        }
        guard let first = text.utf8.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") || first == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return text
        }
        let digits = text.contains("_") ? text.replacingOccurrences(of: "_", with: "") : text
        let sign = digits.hasPrefix("-") ? -1 : 1
        let unsigned = digits.hasPrefix("-") || digits.hasPrefix("+") ? String(digits.dropFirst()) : digits
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8)] where unsigned.hasPrefix(prefix) {
            // Digits only (Int would also take a sign there); at most Int.max, so the sign
            // cannot overflow.
            let digits = unsigned.dropFirst(2)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isHexDigit && Int(String($0), radix: 16)! < radix }) else { return text }
            return Int(digits, radix: radix).map { $0 * sign } ?? text
        }
        if unsigned.count > 1, unsigned.hasPrefix("0"), unsigned.allSatisfy({ ("0"..."7").contains($0) }) {
            return Int(unsigned.dropFirst(), radix: 8).map { $0 * sign } ?? text
        }
        if let integer = Int(digits) { return integer }
        if unsigned.contains(where: { $0.isNumber }), !unsigned.contains(where: { $0.isLetter && $0 != "e" && $0 != "E" }), let number = Double(digits) { return number }
        return text
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
