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

    /// Begins every placeholder's title: random per document, so no title a document holds
    /// is taken for one.
    let placeholderPrefix: String

    init(root: [String: Any], dialect30: Bool, slots: [Any] = [], placeholderPrefix: String = "") {
        self.root = root
        self.dialect30 = dialect30
        self.slots = slots
        self.placeholderPrefix = placeholderPrefix
    }

    /// A new placeholder prefix.
    static func newPlaceholderPrefix() -> String { "baton-schema-\(UInt64.random(in: 0...UInt64.max)) " }

    /// The slot a placeholder names, or nil when `map` is no placeholder.
    func slot(_ map: [String: Any]) -> Int? {
        guard map.count == 1, !placeholderPrefix.isEmpty, let title = map["title"] as? String else { return nil }
        return slot(title: title)
    }

    private func slot(title: String) -> Int? {
        guard title.hasPrefix(placeholderPrefix), let index = Int(title.dropFirst(placeholderPrefix.count)), slots.indices.contains(index) else { return nil }
        return index
    }

    /// The shape behind a placeholder OpenAPIKit decoded; no schema (a media type without one)
    /// accepts anything.
    func shape(_ schema: JSONSchema?, usage: SchemaShape.Usage) -> SchemaShape {
        guard let title = schema?.title, let index = slot(title: title) else { return .any }
        return shape(slot: index, usage: usage)
    }

    func shape(slot index: Int, usage: SchemaShape.Usage) -> SchemaShape {
        Self.visible(whole(slot: index, usage: usage, depth: 0), usage)
    }

    private func whole(slot index: Int, usage: SchemaShape.Usage, depth: Int) -> SchemaShape {
        cached("slot \(index)", usage) { whole(slots[index], usage: usage, depth: depth) }
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

    /// The value at a JSON pointer into the document, through placeholders.
    private func value(at pointer: String) -> Any? {
        DocumentPreparer.value(at: pointer, in: root) { value in
            (value as? [String: Any]).flatMap(slot).map { slots[$0] } ?? value
        }
    }

    /// Keywords that only annotate; an object with nothing else beside a `$ref` is the target.
    private static let annotations: Set<String> = ["$ref", "description", "summary", "title", "example", "examples", "$comment", "externalDocs", "xml", "$id", "$anchor", "$schema", "$defs", "definitions"]

    /// A schema as one side sees it. `depth` bounds a pathological nesting; `DocumentPreparer`
    /// has already cut `$ref` cycles.
    func read(_ value: Any, usage: SchemaShape.Usage, depth: Int) -> SchemaShape {
        Self.visible(whole(value, usage: usage, depth: depth), usage)
    }

    /// A schema with every property, also those this side never sees: the parts of an allOf
    /// are merged whole, and only the result loses them.
    private func whole(_ value: Any, usage: SchemaShape.Usage, depth: Int) -> SchemaShape {
        guard depth < 256 else { return .any }
        if let flag = Self.bool(value) { return flag ? .any : .nothing }
        guard let map = value as? [String: Any] else { return .any }
        if let ref = map["$ref"] as? String {
            let target = cached("ref \(ref)", usage) {
                guard ref.hasPrefix("#"), let resolved = self.value(at: String(ref.dropFirst())) else { return .any }
                return whole(resolved, usage: usage, depth: depth + 1)
            }
            // 2020-12 applies a `$ref`'s siblings too, as an allOf.
            var rest = map
            rest["$ref"] = nil
            guard rest.keys.contains(where: { !Self.annotations.contains($0) && !$0.hasPrefix("x-") }) else { return target }
            return Self.merge([target, whole(rest, usage: usage, depth: depth + 1)], nullable: false)
        }
        if let index = slot(map) { return whole(slot: index, usage: usage, depth: depth + 1) }
        let base = node(map, usage: usage, depth: depth)
        var parts: [SchemaShape] = []
        if let base { parts.append(.value(base)) }
        for schema in map["allOf"] as? [Any] ?? [] { parts.append(whole(schema, usage: usage, depth: depth + 1)) }
        var shape: SchemaShape = parts.isEmpty ? .any : parts.count == 1 ? parts[0] : Self.merge(parts, nullable: false)
        for keyword in ["oneOf", "anyOf"] {
            guard let list = map[keyword] as? [Any] else { continue }
            var discriminator: SchemaShape.Discriminator?
            if let raw = map["discriminator"] as? [String: Any], let name = raw["propertyName"] as? String {
                let mapping = (raw["mapping"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? String).map { String($0.split(separator: "/").last ?? "") } }
                discriminator = .init(propertyName: name, mapping: mapping)
            }
            let options = list.map { option in
                Self.visible(shape == .any ? whole(option, usage: usage, depth: depth + 1) : Self.merge([shape, whole(option, usage: usage, depth: depth + 1)], nullable: false), usage)
            }
            // Without a mapping, a discriminator value is the name of the schema an option
            // references.
            if var chosen = discriminator {
                for option in list {
                    guard let ref = (option as? [String: Any])?["$ref"] as? String, let name = ref.split(separator: "/").last.map(String.init) else { continue }
                    if !chosen.mapping.values.contains(name) { chosen.mapping[name] = name }
                }
                discriminator = chosen
            }
            shape = Self.alternatives(options, nullable: base?.nullable ?? false, oneOf: keyword == "oneOf", discriminator: discriminator)
        }
        return shape
    }

    /// Without the properties a side never sees: readOnly in requests, writeOnly in responses
    /// (after allOf is merged, so a `required` in one part and `readOnly` in another agree).
    private static func visible(_ shape: SchemaShape, _ usage: SchemaShape.Usage) -> SchemaShape {
        guard case .value(var node) = shape, usage != .message else { return shape }
        let hidden = node.properties.filter { _, property in
            guard case .value(let inner) = property else { return false }
            return (usage == .request && inner.readOnly) || (usage == .response && inner.writeOnly)
        }.keys
        guard !hidden.isEmpty else { return shape }
        for name in hidden { node.properties[name] = nil }
        node.required.subtract(hidden)
        return .value(node)
    }

    /// The keywords of one schema object other than its combinators; nil when it has none.
    private func node(_ map: [String: Any], usage: SchemaShape.Usage, depth: Int) -> SchemaShape.Node? {
        func schema(_ key: String) -> SchemaShape? { map[key].map { read($0, usage: usage, depth: depth + 1) } }
        func int(_ key: String) -> Int? { Self.count(map[key]) }
        func schemas(_ key: String) -> [String: SchemaShape] {
            (map[key] as? [String: Any] ?? [:]).mapValues { read($0, usage: usage, depth: depth + 1) }
        }
        var node = SchemaShape.Node(types: [])
        switch map["type"] {
        case let type as String: node.types = [type]
        case let list as [Any]: node.types = Set(list.compactMap { $0 as? String })
        default:
            node.types = Self.implied(map)
            node.typesImplied = !node.types.isEmpty
        }
        if node.types.remove("null") != nil { node.nullable = true }
        if dialect30, Self.bool(map["nullable"]) == true { node.nullable = true }
        if let values = map["enum"] as? [Any] {
            node.enumValues = values.map(Self.describe)
        } else if let value = map["const"] {
            node.enumValues = [Self.describe(value)]
        }
        // null in an enum is the value being nullable; a const or enum without a type has the
        // types of its values.
        if let values = node.enumValues, values.contains("null") {
            node.enumValues = values.filter { $0 != "null" }
            node.nullable = true
        }
        if map["type"] == nil, node.types.isEmpty, let values = (map["enum"] as? [Any]) ?? map["const"].map({ [$0] }) {
            node.types = Set(values.compactMap(Self.jsonType))
            node.typesImplied = true
        }
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
        node.properties = schemas("properties")
        node.required = Set((map["required"] as? [Any] ?? []).compactMap { $0 as? String })
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
        if nonNull.count == 1, discriminator == nil, case .value(var node) = nonNull[0] {
            node.nullable = node.nullable || isNullable
            return .value(node)
        }
        return .alternatives(.init(options: nonNull, nullable: isNullable, oneOf: oneOf, discriminator: discriminator))
    }

    /// `{type: null}` as read.
    private static let nullNode: SchemaShape.Node = { var node = SchemaShape.Node(types: []); node.nullable = true; return node }()

    /// allOf: a value must match every part, so types intersect, properties merge, and bounds,
    /// patterns, required lists and other constraints add up. A part's `additionalProperties`
    /// sees only the properties of its own part (JSON Schema's rule), so it constrains those
    /// the other parts add.
    static func merge(_ shapes: [SchemaShape], nullable: Bool) -> SchemaShape {
        var merged: SchemaShape.Node?
        var others: [SchemaShape] = []
        // Parts that say what types a value has vote on null; the others let it through.
        var votes: [Bool] = []
        for shape in shapes {
            switch shape {
            case .any: continue
            case .nothing: return .nothing
            case .alternatives: others.append(shape); votes.append(shape.nullable)
            case .value(var node):
                if !(node.types.isEmpty || node.typesImplied) || node.enumValues != nil { votes.append(node.nullable) }
                guard var current = merged else { merged = node; continue }
                guard let types = mergedTypes(current, node) else { return .nothing }
                (current.types, current.typesImplied) = types
                restrict(&node.properties, by: current)
                restrict(&current.properties, by: node)
                current.properties.merge(node.properties) { a, b in merge([a, b], nullable: false) }
                current.required.formUnion(node.required)
                current.patternProperties.merge(node.patternProperties) { a, b in merge([a, b], nullable: false) }
                switch (current.additionalProperties, node.additionalProperties) {
                case (_, .forbidden), (.allowed, _): current.additionalProperties = node.additionalProperties
                case (.schema(let a), .schema(let b)): current.additionalProperties = .schema(merge([a, b], nullable: false))
                default: break
                }
                switch (current.items, node.items) {
                case (_, .forbidden), (.allowed, _): current.items = node.items
                case (.schema(let a), .schema(let b)): current.items = .schema(merge([a, b], nullable: false))
                default: break
                }
                if current.prefixItems.isEmpty { current.prefixItems = node.prefixItems }
                current.enumValues = current.enumValues.map { values in node.enumValues.map { theirs in values.filter(theirs.contains) } ?? values } ?? node.enumValues
                current.format = current.format ?? node.format
                current.defaultValue = current.defaultValue ?? node.defaultValue
                current.pattern = Self.both(current.pattern, node.pattern)
                current.minimum = Self.stricter(current.minimum, node.minimum, lower: true)
                current.maximum = Self.stricter(current.maximum, node.maximum, lower: false)
                current.multipleOf = Self.commonMultiple(current.multipleOf, node.multipleOf)
                current.minLength = Self.max(current.minLength, node.minLength)
                current.maxLength = Self.min(current.maxLength, node.maxLength)
                current.minItems = Self.max(current.minItems, node.minItems)
                current.maxItems = Self.min(current.maxItems, node.maxItems)
                current.minProperties = Self.max(current.minProperties, node.minProperties)
                current.maxProperties = Self.min(current.maxProperties, node.maxProperties)
                current.uniqueItems = current.uniqueItems || node.uniqueItems
                current.contains = current.contains.map { a in node.contains.map { merge([a, $0], nullable: false) } ?? a } ?? node.contains
                current.minContains = Self.max(current.minContains, node.minContains)
                current.maxContains = Self.min(current.maxContains, node.maxContains)
                current.contentMediaType = current.contentMediaType ?? node.contentMediaType
                current.contentEncoding = current.contentEncoding ?? node.contentEncoding
                current.contentSchema = current.contentSchema.map { a in node.contentSchema.map { merge([a, $0], nullable: false) } ?? a } ?? node.contentSchema
                current.propertyNames = current.propertyNames.map { a in node.propertyNames.map { merge([a, $0], nullable: false) } ?? a } ?? node.propertyNames
                current.dependentRequired.merge(node.dependentRequired) { $0.union($1) }
                current.dependentSchemas.merge(node.dependentSchemas) { a, b in merge([a, b], nullable: false) }
                current.not += node.not
                current.conditionals += node.conditionals
                current.deprecated = current.deprecated || node.deprecated
                current.readOnly = current.readOnly || node.readOnly
                current.writeOnly = current.writeOnly || node.writeOnly
                merged = current
            }
        }
        let allowsNull = nullable || (votes.isEmpty ? merged?.nullable ?? false : votes.allSatisfy { $0 })
        guard var result = merged else {
            // Only alternatives: each must hold, so the first's options take the others' in turn.
            guard var first = others.first, case .alternatives = first else { return .any }
            for next in others.dropFirst() {
                guard case .alternatives(var combined) = first else { break }
                combined.options = combined.options.map { merge([$0, next], nullable: false) }
                first = .alternatives(combined)
            }
            return first
        }
        result.nullable = allowsNull
        guard others.isEmpty else {
            // allOf of a shape and alternatives: each alternative must also match the shape.
            guard case .alternatives(var alternatives) = others[0] else { return .value(result) }
            alternatives.options = alternatives.options.map { merge([.value(result)] + [$0] + others.dropFirst(), nullable: false) }
            alternatives.nullable = alternatives.nullable && result.nullable
            return .alternatives(alternatives)
        }
        return .value(result)
    }

    /// The types a value of both nodes may have; nil when none. A type only implied by
    /// keywords gives way to one written out; integer is a number.
    private static func mergedTypes(_ a: SchemaShape.Node, _ b: SchemaShape.Node) -> (Set<String>, Bool)? {
        if a.types.isEmpty { return (b.types, b.typesImplied) }
        if b.types.isEmpty { return (a.types, a.typesImplied) }
        if a.typesImplied != b.typesImplied { return a.typesImplied ? (b.types, false) : (a.types, false) }
        var common = a.types.intersection(b.types)
        if (a.types.contains("number") && b.types.contains("integer")) || (b.types.contains("number") && a.types.contains("integer")) { common.insert("integer") }
        if common.isEmpty { return a.typesImplied ? ([], true) : nil }
        return (common, a.typesImplied)
    }

    /// `properties` of other parts, as seen by `node`'s additionalProperties.
    private static func restrict(_ properties: inout [String: SchemaShape], by node: SchemaShape.Node) {
        guard node.additionalProperties != .allowed else { return }
        for name in properties.keys where node.properties[name] == nil && !node.patternProperties.keys.contains(where: { SchemaCompat.matches(name, $0) ?? true }) {
            properties[name] = merge([properties[name]!, node.additionalProperties.shape], nullable: false)
        }
    }

    /// Both patterns, as one: each must match somewhere (patterns are unanchored).
    private static func both(_ a: String?, _ b: String?) -> String? {
        guard let a, let b, a != b else { return a ?? b }
        return "^(?=[\\s\\S]*?(?:\(a)))(?=[\\s\\S]*?(?:\(b)))"
    }

    /// A value that is a multiple of both: the least common multiple of integers, else the
    /// larger when it is a multiple of the smaller, else the first.
    private static func commonMultiple(_ a: Double?, _ b: Double?) -> Double? {
        guard let a, let b, a != b else { return a ?? b }
        if a == a.rounded(), b == b.rounded(), a > 0, b > 0, a < 1e15, b < 1e15 {
            var (x, y) = (Int64(a), Int64(b))
            while y != 0 { (x, y) = (y, x % y) }
            return a / Double(x) * b
        }
        let (small, large) = a < b ? (a, b) : (b, a)
        return SchemaCompat.divides(small, large) ? large : a
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

    /// A count (minLength, maxItems, …): clamped, so a huge or non-finite one cannot trap.
    static func count(_ value: Any?) -> Int? {
        guard let number = number(value), !number.isNaN else { return nil }
        if number >= 9.2e18 { return Int.max }
        if number <= -9.2e18 { return Int.min }
        return Int(number)
    }

    /// The JSON type of a value.
    static func jsonType(_ value: Any) -> String? {
        if bool(value) != nil { return "boolean" }
        switch value {
        case is String: return "string"
        case is NSNull: return nil
        case is [String: Any]: return "object"
        case is [Any]: return "array"
        default:
            guard let number = number(value) else { return nil }
            return number == number.rounded() ? "integer" : "number"
        }
    }

    static func number(_ value: Any?) -> Double? {
        guard let value, bool(value) == nil else { return nil }
        if let integer = value as? Int, type(of: value) == Int.self { return Double(integer) }
        if let double = value as? Double, type(of: value) == Double.self { return double }
        return (value as? NSNumber)?.doubleValue
    }

    /// One spelling per number, whether YAML gave an integer or JSON a double: integers below
    /// 2^53 as integers, the rest as Swift prints a double.
    private static func describe(number: Double) -> String {
        number == number.rounded() && abs(number) < 9_007_199_254_740_992 ? String(Int64(number)) : String(number)
    }

    /// A value as JSON text, to compare enum members and defaults.
    static func describe(_ value: Any) -> String {
        if let flag = bool(value) { return flag ? "true" : "false" }
        switch value {
        case let string as String: return "\"\(string)\""
        case is NSNull: return "null"
        case let number as Int where type(of: value) == Int.self: return abs(number) < 1 << 53 ? String(number) : String(Double(number))
        case let number as Double where type(of: value) == Double.self: return describe(number: number)
        case let number as NSNumber: return describe(number: number.doubleValue)
        default:
            guard JSONSerialization.isValidJSONObject(value), let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) else { return "\(value)" }
            return String(decoding: data, as: UTF8.self)
        }
    }
}
