import OpenAPIKit

/// A JSON schema reduced to what decides whether one side accepts what the other sends: types,
/// null, enum values, bounds, properties and which are required, and alternatives. `allOf` is
/// merged into one shape; `$ref`s are already resolved.
public indirect enum SchemaShape: Sendable, Equatable {
    /// Anything goes (`{}`).
    case any
    case value(Node)
    case oneOf([SchemaShape], nullable: Bool)
    case anyOf([SchemaShape], nullable: Bool)

    public struct Node: Sendable, Equatable {
        /// "string", "integer", "number", "boolean", "object", "array", "null".
        public var types: Set<String>
        public var nullable = false
        public var enumValues: [String]?
        public var defaultValue: String?
        public var format: String?
        public var minimum: Double?
        public var maximum: Double?
        public var minLength: Int?
        public var maxLength: Int?
        public var pattern: String?
        public var minItems: Int?
        public var maxItems: Int?
        public var properties: [String: SchemaShape] = [:]
        public var required: Set<String> = []
        /// nil: allowed (any); false: none allowed; a shape: allowed if they match it.
        public var additionalProperties: Additional = .allowed
        public var items: SchemaShape?

        public enum Additional: Sendable, Equatable {
            case allowed, forbidden
            case schema(SchemaShape)
        }
    }

    var nullable: Bool {
        switch self {
        case .any: return true
        case .value(let node): return node.nullable
        case .oneOf(_, let nullable), .anyOf(_, let nullable): return nullable
        }
    }

    /// Which side of an API a schema describes: readOnly properties are never in requests and
    /// writeOnly ones never in responses (OpenAPI's rule), so they drop out there.
    public enum Usage: Sendable { case request, response, message }

    /// From OpenAPIKit's (dereferenced) schema.
    public init(_ schema: JSONSchema, usage: Usage = .message) {
        switch schema.value {
        case .null: self = .value(Node(types: ["null"], nullable: true))
        case .boolean(let core): self = .value(Self.node(["boolean"], core))
        case .number(let core, let numeric):
            var node = Self.node(["number"], core)
            node.minimum = numeric.minimum?.value
            node.maximum = numeric.maximum?.value
            self = .value(node)
        case .integer(let core, let integer):
            var node = Self.node(["integer"], core)
            node.minimum = integer.minimum.map { Double($0.value) }
            node.maximum = integer.maximum.map { Double($0.value) }
            self = .value(node)
        case .string(let core, let string):
            var node = Self.node(["string"], core)
            node.minLength = string.minLength == 0 ? nil : string.minLength
            node.maxLength = string.maxLength
            node.pattern = string.pattern
            self = .value(node)
        case .object(let core, let object):
            var node = Self.node(["object"], core)
            for (name, property) in object.properties {
                if (usage == .request && property.readOnly) || (usage == .response && property.writeOnly) { continue }
                node.properties[name] = SchemaShape(property, usage: usage)
            }
            node.required = Set(object.requiredProperties).filter { name in
                guard let property = object.properties[name] else { return true }
                return !((usage == .request && property.readOnly) || (usage == .response && property.writeOnly))
            }
            switch object.additionalProperties {
            case .a(false): node.additionalProperties = .forbidden
            case .b(let schema): node.additionalProperties = .schema(SchemaShape(schema, usage: usage))
            default: node.additionalProperties = .allowed
            }
            self = .value(node)
        case .array(let core, let array):
            var node = Self.node(["array"], core)
            node.items = array.items.map { SchemaShape($0, usage: usage) }
            node.minItems = array.minItems == 0 ? nil : array.minItems
            node.maxItems = array.maxItems
            self = .value(node)
        case .all(let schemas, let core):
            self = Self.merge(schemas.map { SchemaShape($0, usage: usage) }, nullable: core.nullable)
        // With a discriminator the property picks the alternative, so overlapping branches are
        // no ambiguity: read it as anyOf.
        case .one(let schemas, let core):
            self = Self.alternatives(schemas.map { SchemaShape($0, usage: usage) }, nullable: core.nullable, one: core.discriminator == nil)
        case .any(let schemas, let core): self = Self.alternatives(schemas.map { SchemaShape($0, usage: usage) }, nullable: core.nullable, one: false)
        case .not, .reference: self = .any
        case .fragment(let core):
            guard core.allowedValues != nil || core.nullable || core.defaultValue != nil else { self = .any; return }
            var node = Self.node([], core)
            node.types = []
            self = .value(node)
        }
    }

    /// A `[T, null]` alternative is T made nullable.
    private static func alternatives(_ shapes: [SchemaShape], nullable: Bool, one: Bool) -> SchemaShape {
        let nonNull = shapes.filter { if case .value(let node) = $0, node.types == ["null"] { return false }; return true }
        let isNullable = nullable || nonNull.count < shapes.count
        if nonNull.count == 1, case .value(var node) = nonNull[0] {
            node.nullable = node.nullable || isNullable
            return .value(node)
        }
        return one ? .oneOf(nonNull, nullable: isNullable) : .anyOf(nonNull, nullable: isNullable)
    }

    /// allOf: properties and required lists add up; other facts come from the first that says.
    private static func merge(_ shapes: [SchemaShape], nullable: Bool) -> SchemaShape {
        var merged: Node?
        for case .value(let node) in shapes {
            guard var current = merged else { merged = node; continue }
            current.types = current.types.isEmpty ? node.types : (node.types.isEmpty ? current.types : current.types.intersection(node.types))
            current.properties.merge(node.properties) { a, _ in a }
            current.required.formUnion(node.required)
            if node.additionalProperties == .forbidden { current.additionalProperties = .forbidden }
            current.enumValues = current.enumValues ?? node.enumValues
            current.format = current.format ?? node.format
            current.items = current.items ?? node.items
            merged = current
        }
        guard var result = merged else { return .any }
        result.nullable = result.nullable || nullable
        return .value(result)
    }

    private static func node<Format>(_ types: Set<String>, _ core: JSONSchema.CoreContext<Format>) -> Node {
        var node = Node(types: types)
        node.nullable = core.nullable
        node.enumValues = core.allowedValues.map { $0.map(Self.describe) }
        node.defaultValue = core.defaultValue.map(Self.describe)
        node.format = core.formatString.flatMap { $0.isEmpty || $0 == "generic" ? nil : $0 }
        return node
    }

    static func describe(_ value: AnyCodable) -> String {
        switch value.value {
        case let string as String: return "\"\(string)\""
        case Optional<Any>.none: return "null"
        default: return "\(value.value)"
        }
    }
}
