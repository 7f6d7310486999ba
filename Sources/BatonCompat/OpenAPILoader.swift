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
        let json = try JSONSerialization.data(withJSONObject: try preparer.prepare(top))
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
            return LoadedDocument(document: try document.locallyDereferenced(), notes: preparer.notes)
        } catch {
            throw BatonError(.invalidConfiguration, "\(file): unresolvable $ref: \(Self.oneLine("\(error)"))")
        }
    }

    /// Dereferences a JSON Schema of its own (message definitions): `$defs` and `definitions`
    /// become components so OpenAPIKit resolves `#/$defs/…` references.
    public static func schema(path: String) throws -> OpenAPIKit.JSONSchema {
        let text = try readText(path)
        guard var raw = try read(text, file: path).top else {
            throw BatonError(.invalidConfiguration, "\(path):1: (top level): expected a JSON Schema object")
        }
        let definitions = (raw.removeValue(forKey: "$defs") as? [String: Any] ?? [:])
            .merging(raw.removeValue(forKey: "definitions") as? [String: Any] ?? [:]) { a, _ in a }
        raw.removeValue(forKey: "$schema")
        raw.removeValue(forKey: "$id")
        let wrapped: [String: Any] = [
            "openapi": "3.1.0", "info": ["title": "messages", "version": "1"], "paths": [String: Any](),
            "components": ["schemas": definitions.merging(["_baton_root": raw]) { a, _ in a }],
        ]
        let json = try JSONSerialization.data(withJSONObject: rewriteReferences(wrapped))
        let document: OpenAPIKit.OpenAPI.Document
        do {
            document = try JSONDecoder().decode(OpenAPIKit.OpenAPI.Document.self, from: json)
        } catch {
            let pretty = OpenAPIKit.OpenAPI.Error(from: error)
            throw BatonError(.invalidConfiguration, "\(path): at \(pretty.codingPathString.replacingOccurrences(of: ".components.schemas._baton_root", with: "")): \(Self.oneLine(pretty.localizedDescription))")
        }
        do {
            let dereferenced = try document.locallyDereferenced()
            guard let root = dereferenced.components.schemas["_baton_root"] else { throw BatonError(.invalidConfiguration, "\(path): empty schema") }
            return try root.dereferenced(in: document.components).jsonSchema
        } catch let error as BatonError {
            throw error
        } catch {
            throw BatonError(.invalidConfiguration, "\(path): unresolvable $ref: \(Self.oneLine("\(error)"))")
        }
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

    private static func rewriteReferences(_ value: Any) -> Any {
        switch value {
        case let map as [String: Any]:
            var copy: [String: Any] = [:]
            for (key, inner) in map {
                if key == "$ref", let ref = inner as? String {
                    copy[key] = ref.replacingOccurrences(of: "#/$defs/", with: "#/components/schemas/").replacingOccurrences(of: "#/definitions/", with: "#/components/schemas/")
                } else {
                    copy[key] = rewriteReferences(inner)
                }
            }
            return copy
        case let list as [Any]: return list.map(rewriteReferences)
        default: return value
        }
    }

    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
