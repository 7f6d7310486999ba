import Foundation
import OpenAPIKit

/// The schemas of one document, read from its JSON into `SchemaShape`s. Baton reads schemas
/// itself rather than through OpenAPIKit so every JSON Schema 2020-12 keyword counts (OpenAPIKit
/// drops `if`, `dependentRequired`, `contains`, … without a word) and a big document decodes
/// faster: `DocumentPreparer` lifts each schema out of the document into `slots` and leaves a
/// placeholder OpenAPIKit reads as a trivial schema.
///
/// Unchecked Sendable: the cache fills as shapes are read, and a source is read by one task at
/// a time (loaded on one, then compared on another), never by two at once.
public final class SchemaSource: @unchecked Sendable {
    /// The prepared document (or message schema), for `#/…` references.
    let root: [String: Any]
    /// OpenAPI 3.0's dialect, where `nullable: true` admits null.
    let dialect30: Bool
    /// Schemas lifted out of the document, by placeholder number.
    var slots: [Any]
    private var cache: [String: SchemaShape] = [:]

    static let placeholderPrefix = "baton-schema "

    init(root: [String: Any], dialect30: Bool, slots: [Any] = []) {
        self.root = root
        self.dialect30 = dialect30
        self.slots = slots
    }

    /// The placeholder OpenAPIKit decodes in place of slot `index`.
    static func placeholder(_ index: Int) -> [String: Any] { ["title": placeholderPrefix + String(index)] }

    /// The shape behind a placeholder OpenAPIKit decoded; nil for no schema.
    func shape(_ schema: JSONSchema?, usage: SchemaShape.Usage) -> SchemaShape? {
        guard let schema else { return nil }
        guard let title = schema.title, title.hasPrefix(Self.placeholderPrefix), let index = Int(title.dropFirst(Self.placeholderPrefix.count)), slots.indices.contains(index) else {
            return .any
        }
        return shape(slot: index, usage: usage)
    }

    func shape(slot index: Int, usage: SchemaShape.Usage) -> SchemaShape {
        cached("slot \(index)", usage) { read(slots[index], usage: usage, depth: 0) }
    }

    /// The whole root as a schema (message definitions).
    func rootShape(usage: SchemaShape.Usage) -> SchemaShape { read(root, usage: usage, depth: 0) }

    private func cached(_ key: String, _ usage: SchemaShape.Usage, _ make: () -> SchemaShape) -> SchemaShape {
        let full = "\(usage) \(key)"
        if let shape = cache[full] { return shape }
        let shape = make()
        cache[full] = shape
        return shape
    }

    /// Keywords that only annotate; an object with nothing else beside a `$ref` is the target.
    private static let annotations: Set<String> = ["$ref", "description", "summary", "title", "example", "examples", "$comment", "externalDocs", "xml", "$id", "$anchor", "$schema", "$defs", "definitions"]

    /// `depth` bounds a pathological nesting; `DocumentPreparer` has already cut `$ref` cycles.
    func read(_ value: Any, usage: SchemaShape.Usage, depth: Int) -> SchemaShape {
        guard depth < 256 else { return .any }
        if let flag = Self.bool(value) { return flag ? .any : .nothing }
        guard let map = value as? [String: Any] else { return .any }
        if let ref = map["$ref"] as? String {
            let target = cached("ref \(ref)", usage) {
                guard ref.hasPrefix("#"), let resolved = DocumentPreparer.value(at: String(ref.dropFirst()), in: root) else { return .any }
                return read(resolved, usage: usage, depth: depth + 1)
            }
            // 2020-12 applies a `$ref`'s siblings too, as an allOf.
            var rest = map
            rest["$ref"] = nil
            guard rest.keys.contains(where: { !Self.annotations.contains($0) && !$0.hasPrefix("x-") }) else { return target }
            return Self.merge([target, read(rest, usage: usage, depth: depth + 1)], nullable: false)
        }
        if let title = map["title"] as? String, title.hasPrefix(Self.placeholderPrefix), map.count == 1,
           let index = Int(title.dropFirst(Self.placeholderPrefix.count)), slots.indices.contains(index) {
            return shape(slot: index, usage: usage)
        }
        let base = node(map, usage: usage, depth: depth)
        var parts: [SchemaShape] = []
        if let base { parts.append(.value(base)) }
        for schema in map["allOf"] as? [Any] ?? [] { parts.append(read(schema, usage: usage, depth: depth + 1)) }
        var shape: SchemaShape = parts.isEmpty ? .any : parts.count == 1 ? parts[0] : Self.merge(parts, nullable: false)
        for keyword in ["oneOf", "anyOf"] {
            guard let list = map[keyword] as? [Any] else { continue }
            var discriminator: SchemaShape.Discriminator?
            if let raw = map["discriminator"] as? [String: Any], let name = raw["propertyName"] as? String {
                let mapping = (raw["mapping"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? String).map { String($0.split(separator: "/").last ?? "") } }
                discriminator = .init(propertyName: name, mapping: mapping)
            }
            let options = list.map { option in shape == .any ? read(option, usage: usage, depth: depth + 1) : Self.merge([shape, read(option, usage: usage, depth: depth + 1)], nullable: false) }
            shape = Self.alternatives(options, nullable: base?.nullable ?? false, oneOf: keyword == "oneOf", discriminator: discriminator)
        }
        return shape
    }

    /// The keywords of one schema object other than its combinators; nil when it has none.
    private func node(_ map: [String: Any], usage: SchemaShape.Usage, depth: Int) -> SchemaShape.Node? {
        func schema(_ key: String) -> SchemaShape? { map[key].map { read($0, usage: usage, depth: depth + 1) } }
        func int(_ key: String) -> Int? { Self.number(map[key]).map { Int($0) } }
        func schemas(_ key: String) -> [String: SchemaShape] {
            (map[key] as? [String: Any] ?? [:]).mapValues { read($0, usage: usage, depth: depth + 1) }
        }
        var node = SchemaShape.Node(types: [])
        switch map["type"] {
        case let type as String: node.types = [type]
        case let list as [Any]: node.types = Set(list.compactMap { $0 as? String })
        default: node.types = Self.implied(map)
        }
        if node.types.remove("null") != nil { node.nullable = true }
        if dialect30, Self.bool(map["nullable"]) == true { node.nullable = true }
        if let values = map["enum"] as? [Any] {
            node.enumValues = values.map(Self.describe)
        } else if let value = map["const"] {
            node.enumValues = [Self.describe(value)]
        }
        if node.enumValues?.contains("null") == true, map["type"] == nil { node.nullable = true }
        node.defaultValue = map["default"].map(Self.describe)
        node.format = (map["format"] as? String).flatMap { $0.isEmpty ? nil : $0 }
        node.deprecated = Self.bool(map["deprecated"]) == true
        node.readOnly = Self.bool(map["readOnly"]) == true
        node.writeOnly = Self.bool(map["writeOnly"]) == true

        node.minimum = bound(map, "minimum", "exclusiveMinimum", lower: true)
        node.maximum = bound(map, "maximum", "exclusiveMaximum", lower: false)
        node.multipleOf = Self.number(map["multipleOf"])

        node.minLength = int("minLength").flatMap { $0 == 0 ? nil : $0 }
        node.maxLength = int("maxLength")
        node.pattern = map["pattern"] as? String
        node.contentMediaType = map["contentMediaType"] as? String
        node.contentEncoding = map["contentEncoding"] as? String
        node.contentSchema = schema("contentSchema")

        node.minItems = int("minItems").flatMap { $0 == 0 ? nil : $0 }
        node.maxItems = int("maxItems")
        node.uniqueItems = Self.bool(map["uniqueItems"]) == true
        node.prefixItems = (map["prefixItems"] as? [Any] ?? []).map { read($0, usage: usage, depth: depth + 1) }
        node.items = additional(map["items"] ?? map["unevaluatedItems"], usage: usage, depth: depth)
        node.contains = schema("contains")
        node.minContains = int("minContains")
        node.maxContains = int("maxContains")

        node.minProperties = int("minProperties").flatMap { $0 == 0 ? nil : $0 }
        node.maxProperties = int("maxProperties")
        let excluded: (SchemaShape) -> Bool = { shape in
            guard case .value(let property) = shape else { return false }
            return (usage == .request && property.readOnly) || (usage == .response && property.writeOnly)
        }
        var dropped: Set<String> = []
        for (name, raw) in map["properties"] as? [String: Any] ?? [:] {
            let property = read(raw, usage: usage, depth: depth + 1)
            if excluded(property) { dropped.insert(name) } else { node.properties[name] = property }
        }
        node.required = Set((map["required"] as? [Any] ?? []).compactMap { $0 as? String }).subtracting(dropped)
        node.patternProperties = schemas("patternProperties")
        node.additionalProperties = additional(map["additionalProperties"] ?? map["unevaluatedProperties"], usage: usage, depth: depth)
        node.propertyNames = schema("propertyNames")
        node.dependentRequired = (map["dependentRequired"] as? [String: Any] ?? [:]).mapValues { Set(($0 as? [Any] ?? []).compactMap { $0 as? String }) }
        node.dependentSchemas = schemas("dependentSchemas")

        if let not = map["not"] { node.not = [read(not, usage: usage, depth: depth + 1)] }
        if let condition = map["if"] {
            node.conditionals = [.init(condition: read(condition, usage: usage, depth: depth + 1), then: schema("then") ?? .any, otherwise: schema("else") ?? .any)]
        }
        return node == SchemaShape.Node(types: []) ? nil : node
    }

    /// A type the keywords imply when `type` is absent and they belong to one type only.
    private static func implied(_ map: [String: Any]) -> Set<String> {
        let families: [(String, [String])] = [
            ("object", ["properties", "required", "additionalProperties", "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired", "dependentSchemas", "unevaluatedProperties"]),
            ("array", ["items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems"]),
            ("string", ["minLength", "maxLength", "pattern", "contentMediaType", "contentEncoding", "contentSchema"]),
        ]
        let present = families.filter { $0.1.contains { map[$0] != nil } }
        return present.count == 1 ? [present[0].0] : []
    }

    /// Draft 4 and OpenAPI 3.0 give exclusiveness as a flag on the bound; 2020-12 as a number
    /// of its own (the stricter of the two applies).
    private func bound(_ map: [String: Any], _ inclusiveKey: String, _ exclusiveKey: String, lower: Bool) -> SchemaShape.Bound? {
        let inclusive = Self.number(map[inclusiveKey])
        if let flag = Self.bool(map[exclusiveKey]) { return inclusive.map { .init(value: $0, exclusive: flag) } }
        let exclusive = Self.number(map[exclusiveKey])
        switch (inclusive, exclusive) {
        case (nil, nil): return nil
        case (let value?, nil): return .init(value: value, exclusive: false)
        case (nil, let value?): return .init(value: value, exclusive: true)
        case (let a?, let b?): return (lower ? b >= a : b <= a) ? .init(value: b, exclusive: true) : .init(value: a, exclusive: false)
        }
    }

    private func additional(_ value: Any?, usage: SchemaShape.Usage, depth: Int) -> SchemaShape.Node.Additional {
        guard let value else { return .allowed }
        switch read(value, usage: usage, depth: depth + 1) {
        case .any: return .allowed
        case .nothing: return .forbidden
        case let shape: return .schema(shape)
        }
    }

    /// A `[T, null]` alternative is T made nullable.
    static func alternatives(_ shapes: [SchemaShape], nullable: Bool, oneOf: Bool, discriminator: SchemaShape.Discriminator?) -> SchemaShape {
        let nonNull = shapes.filter { $0 != .value(Self.nullNode) }
        let isNullable = nullable || nonNull.count < shapes.count
        if nonNull.count == 1, case .value(var node) = nonNull[0] {
            node.nullable = node.nullable || isNullable
            return .value(node)
        }
        return .alternatives(.init(options: nonNull, nullable: isNullable, oneOf: oneOf, discriminator: discriminator))
    }

    /// `{type: null}` as read.
    private static let nullNode: SchemaShape.Node = { var node = SchemaShape.Node(types: []); node.nullable = true; return node }()

    /// allOf: a value must match every part, so properties, required lists, bounds and
    /// constraints add up; for single-valued facts the first that says wins.
    static func merge(_ shapes: [SchemaShape], nullable: Bool) -> SchemaShape {
        var merged: SchemaShape.Node?
        var others: [SchemaShape] = []
        var allNullable = true
        for shape in shapes {
            switch shape {
            case .any: continue
            case .nothing: return .nothing
            case .alternatives: others.append(shape); allNullable = allNullable && shape.nullable
            case .value(let node):
                allNullable = allNullable && (node.nullable || node.types.isEmpty && node.enumValues == nil)
                guard var current = merged else { merged = node; continue }
                current.types = current.types.isEmpty ? node.types : (node.types.isEmpty ? current.types : current.types.intersection(node.types))
                current.properties.merge(node.properties) { a, b in a == .any ? b : a }
                current.required.formUnion(node.required)
                current.patternProperties.merge(node.patternProperties) { a, _ in a }
                if current.additionalProperties == .allowed || node.additionalProperties == .forbidden { current.additionalProperties = node.additionalProperties }
                if current.items == .allowed { current.items = node.items }
                if current.prefixItems.isEmpty { current.prefixItems = node.prefixItems }
                current.enumValues = current.enumValues.map { values in node.enumValues.map { theirs in values.filter(theirs.contains) } ?? values } ?? node.enumValues
                current.format = current.format ?? node.format
                current.defaultValue = current.defaultValue ?? node.defaultValue
                current.pattern = current.pattern ?? node.pattern
                current.minimum = Self.stricter(current.minimum, node.minimum, lower: true)
                current.maximum = Self.stricter(current.maximum, node.maximum, lower: false)
                current.multipleOf = current.multipleOf ?? node.multipleOf
                current.minLength = Self.max(current.minLength, node.minLength)
                current.maxLength = Self.min(current.maxLength, node.maxLength)
                current.minItems = Self.max(current.minItems, node.minItems)
                current.maxItems = Self.min(current.maxItems, node.maxItems)
                current.minProperties = Self.max(current.minProperties, node.minProperties)
                current.maxProperties = Self.min(current.maxProperties, node.maxProperties)
                current.uniqueItems = current.uniqueItems || node.uniqueItems
                current.contains = current.contains ?? node.contains
                current.minContains = current.minContains ?? node.minContains
                current.maxContains = current.maxContains ?? node.maxContains
                current.contentMediaType = current.contentMediaType ?? node.contentMediaType
                current.contentEncoding = current.contentEncoding ?? node.contentEncoding
                current.contentSchema = current.contentSchema ?? node.contentSchema
                current.propertyNames = current.propertyNames ?? node.propertyNames
                current.dependentRequired.merge(node.dependentRequired) { $0.union($1) }
                current.dependentSchemas.merge(node.dependentSchemas) { a, _ in a }
                current.not += node.not
                current.conditionals += node.conditionals
                current.deprecated = current.deprecated || node.deprecated
                current.readOnly = current.readOnly || node.readOnly
                current.writeOnly = current.writeOnly || node.writeOnly
                merged = current
            }
        }
        guard var result = merged else {
            // Only alternatives (or nothing): the first stands for the whole.
            return others.first ?? .any
        }
        result.nullable = (allNullable && result.nullable) || nullable
        guard others.isEmpty else {
            // allOf of a shape and alternatives: each alternative must also match the shape.
            guard case .alternatives(var alternatives) = others[0] else { return .value(result) }
            alternatives.options = alternatives.options.map { merge([.value(result), $0], nullable: false) }
            alternatives.nullable = alternatives.nullable && result.nullable
            return .alternatives(alternatives)
        }
        return .value(result)
    }

    /// A shape with another's constraints added (nil: none).
    static func merged(_ shape: SchemaShape, _ other: SchemaShape?) -> SchemaShape {
        other.map { merge([shape, $0], nullable: false) } ?? shape
    }

    private static func stricter(_ a: SchemaShape.Bound?, _ b: SchemaShape.Bound?, lower: Bool) -> SchemaShape.Bound? {
        guard let a else { return b }
        guard let b else { return a }
        if a.value == b.value { return a.exclusive ? a : b }
        return (lower ? a.value > b.value : a.value < b.value) ? a : b
    }

    private static func max(_ a: Int?, _ b: Int?) -> Int? { a.map { x in b.map { Swift.max(x, $0) } ?? x } ?? b }
    private static func min(_ a: Int?, _ b: Int?) -> Int? { a.map { x in b.map { Swift.min(x, $0) } ?? x } ?? b }

    /// The class Foundation gives JSON's true and false (it also bridges 1 and 0 to Bool).
    private static let booleanType = ObjectIdentifier(type(of: NSNumber(value: true)))

    static func bool(_ value: Any?) -> Bool? {
        guard let value else { return nil }
        if let flag = value as? Bool, type(of: value) == Bool.self || ObjectIdentifier(type(of: value)) == booleanType { return flag }
        return nil
    }

    static func number(_ value: Any?) -> Double? {
        guard let value, bool(value) == nil else { return nil }
        if let integer = value as? Int, type(of: value) == Int.self { return Double(integer) }
        if let double = value as? Double, type(of: value) == Double.self { return double }
        return (value as? NSNumber)?.doubleValue
    }

    /// A value as JSON text, to compare enum members and defaults.
    static func describe(_ value: Any) -> String {
        if let flag = bool(value) { return flag ? "true" : "false" }
        switch value {
        case let string as String: return "\"\(string)\""
        case is NSNull: return "null"
        case let number as Int where type(of: value) == Int.self: return String(number)
        case let number as Double where type(of: value) == Double.self: return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case let number as NSNumber:
            let double = number.doubleValue
            return double == double.rounded() && abs(double) < 1e15 ? String(Int64(double)) : String(double)
        default:
            guard JSONSerialization.isValidJSONObject(value), let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return "\(value)" }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
