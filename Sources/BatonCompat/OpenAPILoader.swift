import BatonCore
import Foundation
import OpenAPIKit
import OpenAPIKit30
import OpenAPIKitCompat
import Yams

/// Reads an OpenAPI 3.0 or 3.1 document (YAML or JSON) with OpenAPIKit, converts 3.0 to 3.1,
/// and resolves its local `$ref`s. Every failure is one line naming the file and where.
public enum OpenAPILoader {
    public static func load(path: String) throws -> OpenAPIKit.DereferencedDocument {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.notFound, "\(path): cannot read the file")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws -> OpenAPIKit.DereferencedDocument {
        let root = try YAMLReader.root(text: text, file: file)
        if root.has("swagger") {
            throw root.error("swagger", "Swagger 2.0 is not supported; convert the file to OpenAPI 3 first (for example with swagger2openapi)")
        }
        guard let version = try root.string("openapi") else {
            throw root.error(nil, "not an OpenAPI document: expected a top-level 'openapi: 3.0.x' or '3.1.x'")
        }
        let document: OpenAPIKit.OpenAPI.Document
        do {
            if version.hasPrefix("3.0") {
                document = try YAMLDecoder().decode(OpenAPIKit30.OpenAPI.Document.self, from: text).convert(to: .v3_1_0)
            } else if version.hasPrefix("3.1") {
                document = try YAMLDecoder().decode(OpenAPIKit.OpenAPI.Document.self, from: text)
            } else {
                throw root.error("openapi", "version '\(version)' is not supported; expected 3.0.x or 3.1.x")
            }
        } catch let error as BatonError {
            throw error
        } catch {
            let pretty = OpenAPIKit.OpenAPI.Error(from: error)
            let at = pretty.codingPathString.isEmpty ? "" : " at \(pretty.codingPathString)"
            throw BatonError(.invalidConfiguration, "\(file):\(at): \(Self.oneLine(pretty.localizedDescription))")
        }
        do {
            return try document.locallyDereferenced()
        } catch {
            throw BatonError(.invalidConfiguration, "\(file): unresolvable $ref: \(Self.oneLine("\(error)"))")
        }
    }

    /// Dereferences a JSON Schema of its own (message definitions): `$defs` and `definitions`
    /// become components so OpenAPIKit resolves `#/$defs/…` references.
    public static func schema(path: String) throws -> OpenAPIKit.JSONSchema {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.notFound, "\(path): cannot read the file")
        }
        let text = String(decoding: data, as: UTF8.self)
        _ = try YAMLReader.root(text: text, file: path)
        guard var raw = try Yams.load(yaml: text) as? [String: Any] else {
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
