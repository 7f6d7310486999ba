import BatonCore
import Foundation

/// Makes a document OpenAPIKit can read without losing what matters for compatibility, and
/// says what it changed (INFO notes on the loaded document):
/// - a `$ref` to another local file (`common.yaml#/components/schemas/Error`, relative to the
///   file that holds it) is replaced by what it points at; URLs are refused, never fetched;
/// - a `$ref` that leads back into a schema being resolved (a recursive `Node` whose children
///   are `Node`s) becomes an unconstrained schema there, so recursion is compared one level deep;
/// - structural slips that do not change what a client may send or receive (a response
///   without `description`, `info` without `version` or `title`) are filled in.
struct DocumentPreparer {
    private(set) var notes: [Finding] = []
    /// Schemas lifted out of the document, in place of which it holds placeholders.
    private(set) var slots: [Any] = []
    let placeholderPrefix = SchemaSource.newPlaceholderPrefix()
    /// As given, for messages.
    let file: String
    /// Absolute and normalised, to recognise references back into this document.
    private let mainPath: String
    private var mainRoot: [String: Any] = [:]
    /// Other files read so far, by absolute path.
    private var loaded: [String: [String: Any]] = [:]
    /// References whose targets hold no cycle.
    private var clean: Set<String> = []
    /// References already noted as recursive (one note each, not one per use).
    private var noted: Set<String> = []
    /// Values walked: references that reach a cycle are expanded at each use, so a document
    /// whose recursion would expand without bound is refused instead of hanging.
    private var budget = 5_000_000

    /// Keys whose values are data: a `$ref` inside an example is just text. (In OpenAPI's
    /// objects `default` is a response, not data.)
    private static let dataKeys: Set<String> = ["example", "examples"]
    private static let schemaDataKeys: Set<String> = ["example", "examples", "default", "enum", "const"]

    init(file: String) {
        self.file = file
        mainPath = Self.absolute(file, base: FileManager.default.currentDirectoryPath)
    }

    mutating func prepare(_ root: [String: Any]) throws -> [String: Any] {
        var document = root
        if var info = document["info"] as? [String: Any] {
            for key in ["title", "version"] {
                if info[key] == nil {
                    info[key] = ""
                    note("/info", "info has no \(key)")
                } else if let value = info[key], !(value is String) {
                    // `version: 1.0` unquoted is a number in YAML.
                    info[key] = SchemaSource.describe(value)
                    note("/info/\(key)", "info.\(key) is not text; read as '\(SchemaSource.describe(value))'")
                }
            }
            document["info"] = info
        } else {
            document["info"] = ["title": "", "version": ""]
            note("/info", "the document has no info")
        }
        if document["paths"] == nil && document["webhooks"] == nil { document["paths"] = [String: Any]() }
        document = try resolveAll(document, at: .document)
        return repairResponses(document)
    }

    /// A JSON Schema file of its own (a message definition): references resolved, cycles cut.
    mutating func prepareSchema(_ root: [String: Any]) throws -> [String: Any] {
        try resolveAll(root, at: .schema)
    }

    private mutating func resolveAll(_ root: [String: Any], at place: Place) throws -> [String: Any] {
        mainRoot = root
        var stack: [String] = []
        var path: [String] = []
        return try resolve(root, in: mainPath, root: root, at: place, path: &path, stack: &stack).0 as? [String: Any] ?? root
    }

    private mutating func note(_ pointer: String, _ message: String) {
        notes.append(Finding(id: "document-repaired", level: .info, direction: .none, operation: file, pointer: pointer, message: message))
    }

    /// The file as the user named it, for messages.
    private func named(_ path: String) -> String { path == mainPath ? file : path }

    /// Replaces references to other files by their targets and cuts reference cycles; returns
    /// the value and whether a cycle was cut inside it. A `#…` reference within this document
    /// stays (OpenAPIKit resolves it) unless a cycle was cut beneath it; `clean` remembers
    /// targets found free of cycles, so each is walked once. `stack` holds the references being
    /// resolved (`FILE#POINTER`); `path` the keys down to `value`, made a JSON pointer only for a
    /// note or an error (escaping every key of a big document would cost more than the rest).
    private mutating func resolve(_ value: Any, in current: String, root: [String: Any], at place: Place, path: inout [String], stack: inout [String]) throws -> (Any, cut: Bool) {
        budget -= 1
        if budget < 0 {
            throw BatonError(.invalidConfiguration, "\(file): its recursive $refs expand beyond what Baton compares; break the cycle through fewer schemas")
        }
        switch value {
        case var map as [String: Any]:
            if let ref = map["$ref"] as? String {
                let (target, fragment) = split(ref)
                if target.contains("://") {
                    throw BatonError(.invalidConfiguration, "\(named(current)): at \(Self.pointer(path)): $ref '\(ref)' points at a URL; Baton reads local files only (download it beside the document)")
                }
                let targetFile = target.isEmpty ? current : Self.absolute(target, base: (current as NSString).deletingLastPathComponent)
                let key = targetFile + "#" + fragment
                if stack.contains(key) {
                    if noted.insert(key).inserted { note(Self.pointer(path), "$ref '\(ref)' is recursive; compared one level deep") }
                    return ([String: Any](), true)
                }
                // Kept as written only where OpenAPIKit reads it the same: `#…` in this document.
                let keepable = target.isEmpty && current == mainPath
                if keepable && clean.contains(key) { return (map, false) }
                let document = targetFile == mainPath ? mainRoot : try load(targetFile, from: current, path: path)
                guard let resolved = Self.value(at: fragment, in: document) else {
                    throw BatonError(.invalidConfiguration, "\(named(current)): at \(Self.pointer(path)): $ref '\(ref)' points at nothing")
                }
                stack.append(key)
                let (inner, cut) = try resolve(resolved, in: targetFile, root: document, at: place, path: &path, stack: &stack)
                stack.removeLast()
                if !cut { clean.insert(key) }
                if keepable && !cut { return (map, false) }
                // A schema applies the keywords beside its $ref too (as an allOf); elsewhere, as
                // OpenAPI says, only a description and summary beside it count.
                if place == .schema, map.keys.contains(where: { !["$ref", "description", "summary"].contains($0) }) {
                    var rest = map
                    rest["$ref"] = nil
                    let (siblings, siblingsCut) = try resolve(rest, in: current, root: root, at: place, path: &path, stack: &stack)
                    return (["allOf": [inner, siblings]], cut || siblingsCut)
                }
                guard var object = inner as? [String: Any] else { return (inner, cut) }
                for name in ["description", "summary"] where map[name] != nil { object[name] = map[name] }
                return (object, cut)
            }
            var cut = false
            for key in map.keys.sorted() where place == .names || place == .objectNames || (!(place == .schema ? Self.schemaDataKeys : Self.dataKeys).contains(key) && !key.hasPrefix("x-")) {
                let inner = place.inner(key)
                path.append(key)
                var (resolved, innerCut) = try resolve(map[key]!, in: current, root: root, at: inner, path: &path, stack: &stack)
                path.removeLast()
                // A schema where the document (not another schema) holds one goes to `slots`.
                if place == .document, inner == .schema, key == "schema" {
                    slots.append(resolved)
                    resolved = ["title": placeholderPrefix + String(slots.count - 1)]
                }
                map[key] = resolved
                cut = cut || innerCut
            }
            return (map, cut)
        case let list as [Any]:
            var cut = false
            var items: [Any] = []
            items.reserveCapacity(list.count)
            for (offset, element) in list.enumerated() {
                path.append(String(offset))
                let (inner, innerCut) = try resolve(element, in: current, root: root, at: place.element, path: &path, stack: &stack)
                path.removeLast()
                items.append(inner)
                cut = cut || innerCut
            }
            return (items, cut)
        default:
            return (value, false)
        }
    }

    /// What a value in the document is, which decides how its keys read.
    enum Place: Equatable {
        /// OpenAPI's own objects: a `schema` key holds a schema.
        case document
        /// A schema: its keys are keywords (a `schema` property is no schema position).
        case schema
        /// A map of names to schemas (`properties`, `$defs`, `components/schemas`): every key
        /// is a name, so `example` or `default` there is a property, not data.
        case names
        /// A map of names to OpenAPI objects (paths, responses, headers, components' maps,
        /// webhooks, callbacks, links, encodings): a header or webhook named `schema` is no
        /// schema position.
        case objectNames

        private static let objectMaps: Set<String> = [
            "paths", "webhooks", "responses", "headers", "parameters", "requestBodies", "securitySchemes", "links",
            "callbacks", "pathItems", "encoding", "content", "examples", "mediaTypes",
        ]

        func inner(_ key: String) -> Place {
            switch self {
            case .names: return .schema
            case .objectNames: return .document
            case .document:
                if key == "schema" { return .schema }
                if key == "schemas" || key == "$defs" || key == "definitions" { return .names }
                return Self.objectMaps.contains(key) ? .objectNames : .document
            case .schema:
                return ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"].contains(key) ? .names : .schema
            }
        }

        /// What the elements of a list here are.
        var element: Place {
            switch self {
            case .names: .schema
            case .objectNames: .document
            case .document, .schema: self
            }
        }
    }

    private mutating func load(_ file: String, from current: String, path: [String]) throws -> [String: Any] {
        if let document = loaded[file] { return document }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw BatonError(.notFound, "\(named(current)): at \(Self.pointer(path)): cannot read \(file), which a $ref names")
        }
        let document: [String: Any]?
        do {
            document = try OpenAPILoader.object(String(decoding: data, as: UTF8.self)) as? [String: Any]
        } catch {
            throw BatonError(.invalidConfiguration, "\(file): not valid YAML or JSON (a $ref in \(named(current)) names it): \(OpenAPILoader.oneLine("\(error)"))")
        }
        guard let document else { throw BatonError(.invalidConfiguration, "\(file): expected an object at the top") }
        loaded[file] = document
        return document
    }

    private static func pointer(_ path: [String]) -> String {
        path.map { "/" + OpenAPICompat.escape($0) }.joined()
    }

    private func split(_ ref: String) -> (file: String, fragment: String) {
        guard let hash = ref.firstIndex(of: "#") else { return (ref, "") }
        return (String(ref[..<hash]), String(ref[ref.index(after: hash)...]))
    }

    /// Absolute, with `.` and `..` resolved, so one file has one name.
    private static func absolute(_ path: String, base: String) -> String {
        URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: base.isEmpty ? "." : base, isDirectory: true)).standardizedFileURL.path
    }

    /// The value at a JSON pointer (`/components/schemas/Error`; empty: the whole document).
    /// `through` may replace each value on the way (a placeholder by the schema it stands for).
    static func value(at pointer: String, in document: Any, through: (Any) -> Any = { $0 }) -> Any? {
        var current: Any = document
        for raw in pointer.split(separator: "/", omittingEmptySubsequences: true) {
            current = through(current)
            let token = (String(raw).removingPercentEncoding ?? String(raw)).replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
            if let map = current as? [String: Any], let next = map[token] {
                current = next
            } else if let list = current as? [Any], let index = Int(token), list.indices.contains(index) {
                current = list[index]
            } else {
                return nil
            }
        }
        return current
    }

    /// Responses (under paths, webhooks and components) get the `description` OpenAPI requires.
    private mutating func repairResponses(_ document: [String: Any]) -> [String: Any] {
        var document = document
        func repair(_ responses: Any?, _ pointer: String) -> Any? {
            guard var map = responses as? [String: Any] else { return responses }
            for status in map.keys.sorted() {
                guard var response = map[status] as? [String: Any], response["$ref"] == nil, response["description"] == nil else { continue }
                response["description"] = ""
                map[status] = response
                note(pointer + "/" + OpenAPICompat.escape(status), "response \(status) has no description")
            }
            return map
        }
        for section in ["paths", "webhooks"] {
            guard var items = document[section] as? [String: Any] else { continue }
            for path in items.keys.sorted() {
                guard var item = items[path] as? [String: Any] else { continue }
                for method in item.keys.sorted() {
                    guard var operation = item[method] as? [String: Any] else { continue }
                    operation["responses"] = repair(operation["responses"], "/\(section)/\(OpenAPICompat.escape(path))/\(method)/responses")
                    item[method] = operation
                }
                items[path] = item
            }
            document[section] = items
        }
        if var components = document["components"] as? [String: Any] {
            components["responses"] = repair(components["responses"], "/components/responses")
            document["components"] = components
        }
        return document
    }
}
