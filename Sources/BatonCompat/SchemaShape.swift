/// A JSON schema (2020-12, as OpenAPI 3.1 uses it, or OpenAPI 3.0's dialect) reduced to what
/// decides whether one side accepts what the other sends. `allOf` is merged into one shape and
/// `$ref`s are resolved; annotations that change nothing a validator checks (title, examples,
/// descriptions) are left out. `SchemaSource` reads it from a document.
public indirect enum SchemaShape: Sendable, Equatable {
    /// Anything goes (`{}` or `true`).
    case any
    /// Nothing is valid (`false`).
    case nothing
    case value(Node)
    /// `oneOf` / `anyOf`.
    case alternatives(Alternatives)

    public struct Alternatives: Sendable, Equatable {
        public var options: [SchemaShape]
        public var nullable: Bool
        /// `oneOf` (else `anyOf`).
        public var oneOf: Bool
        public var discriminator: Discriminator?

        /// A value must match exactly one option: `oneOf` without a discriminator (with one,
        /// the property picks the option, so overlapping options are no ambiguity).
        var exclusive: Bool { oneOf && discriminator == nil }
        var keyword: String { oneOf ? "oneOf" : "anyOf" }
    }

    public struct Discriminator: Sendable, Equatable {
        public var propertyName: String
        /// Value → the name of the schema it selects (the last part of the reference).
        public var mapping: [String: String]
    }

    /// A lower or upper bound on a number.
    public struct Bound: Sendable, Equatable, CustomStringConvertible {
        public var value: Double
        public var exclusive: Bool
        public var description: String { exclusive ? "exclusive \(value)" : "\(value)" }
    }

    /// `if`/`then`/`else`.
    public struct Conditional: Sendable, Equatable {
        public var condition: SchemaShape
        public var then: SchemaShape
        public var otherwise: SchemaShape
    }

    public struct Node: Sendable, Equatable {
        /// "string", "integer", "number", "boolean", "object", "array"; empty: any type.
        public var types: Set<String>
        /// The types come from keywords (`properties`, an enum's values), not from `type`: in
        /// an allOf such a part does not rule out null.
        public var typesImplied = false
        public var nullable = false
        /// `enum` or `const`, each value as JSON text.
        public var enumValues: [String]?
        public var defaultValue: String?
        public var format: String?
        public var deprecated = false
        public var readOnly = false
        public var writeOnly = false

        public var minimum: Bound?
        public var maximum: Bound?
        public var multipleOf: Double?

        public var minLength: Int?
        public var maxLength: Int?
        public var pattern: String?
        /// contentMediaType, contentEncoding and contentSchema: what a string carries.
        public var contentMediaType: String?
        public var contentEncoding: String?
        public var contentSchema: SchemaShape?

        public var minItems: Int?
        public var maxItems: Int?
        public var uniqueItems = false
        public var prefixItems: [SchemaShape] = []
        /// Items after `prefixItems` (`items`, or `unevaluatedItems` where `items` is absent).
        public var items: Additional = .allowed
        public var contains: SchemaShape?
        public var minContains: Int?
        public var maxContains: Int?

        public var minProperties: Int?
        public var maxProperties: Int?
        public var properties: [String: SchemaShape] = [:]
        public var required: Set<String> = []
        public var patternProperties: [String: SchemaShape] = [:]
        /// Properties neither listed nor matched by a pattern (`additionalProperties`, or
        /// `unevaluatedProperties` where it is absent).
        public var additionalProperties: Additional = .allowed
        public var propertyNames: SchemaShape?
        public var dependentRequired: [String: Set<String>] = [:]
        public var dependentSchemas: [String: SchemaShape] = [:]

        /// `not`: a value matching any of these is rejected.
        public var not: [SchemaShape] = []
        public var conditionals: [Conditional] = []

        public init(types: Set<String>) { self.types = types }

        public enum Additional: Sendable, Equatable {
            case allowed, forbidden
            case schema(SchemaShape)

            var shape: SchemaShape {
                switch self {
                case .allowed: .any
                case .forbidden: .nothing
                case .schema(let shape): shape
                }
            }
        }
    }

    var nullable: Bool {
        switch self {
        case .any: true
        case .nothing: false
        case .value(let node): node.nullable
        case .alternatives(let alternatives): alternatives.nullable || alternatives.options.contains { $0.nullable }
        }
    }

    /// Which side of an API a schema describes: readOnly properties are never in requests and
    /// writeOnly ones never in responses (OpenAPI's rule), so they drop out there.
    public enum Usage: Sendable { case request, response, message }
}
