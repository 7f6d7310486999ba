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

    private static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.notFound, "\(path): cannot read the file")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Text (YAML or JSON) as JSON data and its top-level object; a syntax error is worded by
    /// YAMLReader, which gives the line.
    private static func read(_ text: String, file: String) throws -> (json: Data, top: [String: Any]?) {
        do {
            let json = try Self.json(text)
            return (json, try JSONSerialization.jsonObject(with: json, options: [.fragmentsAllowed]) as? [String: Any])
        } catch {
            _ = try YAMLReader.root(text: text, file: file)
            throw BatonError(.invalidConfiguration, "\(file): not valid YAML or JSON: \(Self.oneLine("\(error)"))")
        }
    }

    public static func parse(_ text: String, file: String) throws -> LoadedDocument {
        // Parsed once for speed; YAMLReader parses again only to word an error with its line.
        let (_, object) = try read(text, file: file)
        let top = object ?? [:]
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
        let schemas = SchemaSource(root: prepared, dialect30: version.hasPrefix("3.0"), slots: preparer.slots)
        // Every schema position now holds a placeholder, so nothing OpenAPIKit decodes refers
        // to the component schemas.
        if var components = prepared["components"] as? [String: Any] {
            components["schemas"] = nil
            prepared["components"] = components
        }
        let json = try JSONSerialization.data(withJSONObject: prepared)
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
        guard let raw = try read(text, file: path).top else {
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

    /// YAML (or JSON) text as JSON data; YAML keys that are not strings become strings.
    static func json(_ text: String) throws -> Data {
        if text.first(where: { !$0.isWhitespace }) == "{" { return Data(text.utf8) }
        return try JSONSerialization.data(withJSONObject: jsonValue(try Yams.load(yaml: text) as Any), options: [.fragmentsAllowed])
    }

    private static func jsonValue(_ value: Any) -> Any {
        switch value {
        case let map as [AnyHashable: Any]:
            var object: [String: Any] = [:]
            for (key, inner) in map { object["\(key.base)"] = jsonValue(inner) }
            return object
        case let list as [Any]: return list.map(jsonValue)
        case let date as Date: return ISO8601DateFormatter().string(from: date)
        case let data as Data: return data.base64EncodedString()
        case Optional<Any>.none: return NSNull()
        default: return value
        }
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
