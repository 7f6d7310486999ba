import Foundation

/// Every rule `baton compat` reports, in one place: its id, the level its example reports,
/// one sentence, and an example pair. The tests compare each example and expect exactly its
/// findings, so the catalogue cannot drift from the code; `baton compat rules` prints it and
/// the ignore file and `--fail-on-rule` accept only ids it lists.
public enum RuleCatalogue {
    public struct Rule: Sendable {
        public enum Scope: String, Sendable, Codable {
            /// Reported on the document (a repair).
            case document
            /// On an operation, webhook or callback.
            case operation
            /// On a schema, with the place as a prefix: `request-body.`, `response-body.`,
            /// `parameter.`, `response-header.` or `message.`.
            case schema
            /// Migration lint.
            case lint
        }

        public var id: String
        public var scope: Scope
        public var summary: String
        public var example: Example

        /// The level and directions the example reports this rule at.
        public var level: Finding.Level { example.expected.filter { $0.matches(id) }.map(\.level).max() ?? .info }
        public var directions: [Finding.Direction] {
            Array(Set(example.expected.filter { $0.matches(id) }.map(\.direction))).sorted { $0.rawValue < $1.rawValue }
        }
    }

    /// A pair of releases (or a migration) and every finding comparing them gives.
    public struct Example: Sendable {
        public enum Kind: String, Sendable, Codable {
            case requestBody = "request body", responseBody = "response body", parameters = "parameters of POST /items"
            case operation = "operation POST /items", document, migration
        }

        public var kind: Kind
        /// A flow-style YAML fragment: a schema, a parameter list, an operation, the body of a
        /// document after `info`, or SQL for a migration.
        public var old: String
        public var new: String
        public var expected: [Expected]

        /// The whole documents compared (for schema kinds: wrapped in an operation).
        public var documents: (old: String, new: String) {
            switch kind {
            case .requestBody: (Self.request(old), Self.request(new))
            case .responseBody: (Self.response(old), Self.response(new))
            case .parameters: (Self.operation("{parameters: \(old), responses: {\"204\": {description: ok}}}"), Self.operation("{parameters: \(new), responses: {\"204\": {description: ok}}}"))
            case .operation: (Self.operation(old), Self.operation(new))
            case .document: (Self.document(old), Self.document(new))
            case .migration: (old, new)
            }
        }

        public static func document(_ body: String) -> String {
            "openapi: 3.1.0\ninfo: {title: example, version: \"1\"}\n\(body)\n"
        }

        public static func operation(_ operation: String) -> String {
            document("paths:\n  /items:\n    post: \(operation)")
        }

        /// POST /items taking `schema` as its required JSON body.
        public static func request(_ schema: String, required: Bool = true) -> String {
            operation("{requestBody: {required: \(required), content: {application/json: {schema: \(schema)}}}, responses: {\"204\": {description: ok}}}")
        }

        /// POST /items answering 200 with `schema`.
        public static func response(_ schema: String) -> String {
            operation("{responses: {\"200\": {description: ok, content: {application/json: {schema: \(schema)}}}}}")
        }
    }

    /// "backward request-body.pattern-added ERR"
    public struct Expected: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
        public var direction: Finding.Direction
        public var id: String
        public var level: Finding.Level

        public init(stringLiteral text: String) {
            let words = text.split(separator: " ").map(String.init)
            precondition(words.count == 3, "expected 'DIRECTION ID LEVEL': \(text)")
            direction = Finding.Direction(rawValue: words[0])!
            id = words[1]
            level = Finding.Level(rawValue: words[2])!
        }

        public init(_ finding: Finding) {
            direction = finding.direction
            id = finding.id
            level = finding.level
        }

        public var description: String { "\(direction.rawValue) \(id) \(level.rawValue)" }

        func matches(_ rule: String) -> Bool { RuleCatalogue.id(id, is: rule) }
    }

    /// Whether a finding's id is the rule's: the same, or the rule under a place prefix.
    public static func id(_ findingID: String, is rule: String) -> Bool {
        findingID == rule || (findingID.hasSuffix("." + rule) && !rule.contains("."))
    }

    /// Where schema rules are reported.
    public static let places = ["request-body", "response-body", "parameter", "response-header", "message"]

    /// The rule a finding id (with or without its place prefix) belongs to.
    public static func rule(for findingID: String) -> Rule? {
        let parts = findingID.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2 {
            guard places.contains(parts[0]) else { return nil }
            return rules.first { $0.scope == .schema && $0.id == parts[1] }
        }
        return rules.first { $0.id == findingID }
    }

    static func api(_ id: String, _ summary: String, _ kind: Example.Kind, _ old: String, _ new: String, _ expected: [Expected]) -> Rule {
        let scope: Rule.Scope = [.requestBody, .responseBody].contains(kind) ? .schema : id == "document-repaired" ? .document : .operation
        return Rule(id: id, scope: scope, summary: summary, example: Example(kind: kind, old: old, new: new, expected: expected))
    }

    private static let ok = #"{"200": {description: ok}}"#
    /// 18 levels, each referring to the next twice: 2^18 paths through the same schemas.
    private static let branching = "{$defs: {" + (0..<18).map { "L\($0): {type: object, properties: {a: {$ref: \"#/paths/~1items/post/responses/200/content/application~1json/schema/$defs/L\($0 + 1)\"}, b: {$ref: \"#/paths/~1items/post/responses/200/content/application~1json/schema/$defs/L\($0 + 1)\"}}}" }.joined(separator: ", ") + ", L18: {type: string}}, $ref: \"#/paths/~1items/post/responses/200/content/application~1json/schema/$defs/L0\"}"
    private static let item = #"{type: object, properties: {kind: {const: cat}}}"#

    public static let rules: [Rule] = apiRules + MigrationLint.rules.map { rule in
        Rule(id: rule.id, scope: .lint, summary: rule.message,
             example: Example(kind: .migration, old: "", new: rule.example, expected: [Expected(stringLiteral: "none \(rule.id) \(rule.level.rawValue)")]))
    }

    static let apiRules: [Rule] = [
        // The document.
        api("document-repaired", "A structural slip that changes nothing a client sends or receives was repaired before comparing (a response without description, info without version, a recursive $ref compared one level deep).",
            .document, "paths: {/items: {get: {responses: {\"200\": {}}}}}", "paths: {/items: {get: {responses: \(ok)}}}", ["none document-repaired INFO"]),

        // Operations, webhooks and callbacks.
        api("operation-removed", "An operation (or webhook, or callback) of OLD is gone from NEW: a client built for OLD gets 404, or waits for an event that never comes.",
            .document, "paths: {/items: {get: {responses: \(ok)}}, /legacy: {get: {responses: \(ok)}}}", "paths: {/items: {get: {responses: \(ok)}}}", ["backward operation-removed ERR"]),
        api("operation-added", "NEW has an operation OLD lacks: a client built for NEW gets 404 from a server still on OLD (roll servers out first).",
            .document, "paths: {/items: {get: {responses: \(ok)}}}", "paths: {/items: {get: {responses: \(ok)}}, /new: {get: {responses: \(ok)}}}", ["forward operation-added WARN"]),
        api("operation-deprecated", "NEW marks an operation deprecated: clients built for OLD should move off it before a later release removes it.",
            .operation, "{responses: \(ok)}", "{deprecated: true, responses: \(ok)}", ["backward operation-deprecated INFO"]),
        api("security-not-accepted", "A client authenticates with one security alternative of its release; the other release's server does not accept it (scheme missing, changed under its name, or a scope added).",
            .document, "paths: {/items: {get: {responses: \(ok)}}}\ncomponents: {securitySchemes: {bearer: {type: http, scheme: bearer}}}",
            "paths: {/items: {get: {security: [{bearer: []}], responses: \(ok)}}}\ncomponents: {securitySchemes: {bearer: {type: http, scheme: bearer}}}", ["backward security-not-accepted ERR"]),

        // Parameters.
        api("parameter-removed", "A parameter of OLD is gone: a server still on OLD that requires it rejects clients built for NEW; a server running NEW ignores what clients built for OLD send.",
            .parameters, "[{name: q, in: query, required: true, schema: {type: string}}]", "[]", ["forward parameter-removed ERR", "backward parameter-removed WARN"]),
        api("parameter-added", "An optional parameter is new: a server still on OLD ignores it.",
            .parameters, "[]", "[{name: q, in: query, schema: {type: string}}]", ["backward parameter-added INFO", "forward parameter-added INFO"]),
        api("parameter-added-required", "A server running NEW requires a parameter clients built for OLD do not send.",
            .parameters, "[]", "[{name: q, in: query, required: true, schema: {type: string}}]", ["backward parameter-added-required ERR", "forward parameter-added WARN"]),
        api("parameter-became-required", "A server running NEW requires a parameter clients built for OLD may omit.",
            .parameters, "[{name: q, in: query, schema: {type: string}}]", "[{name: q, in: query, required: true, schema: {type: string}}]", ["backward parameter-became-required ERR"]),
        api("parameter-became-optional", "Clients built for NEW may omit a parameter a server still on OLD requires.",
            .parameters, "[{name: q, in: query, required: true, schema: {type: string}}]", "[{name: q, in: query, schema: {type: string}}]", ["forward parameter-became-optional ERR"]),
        api("parameter-deprecated", "NEW marks a parameter deprecated.",
            .parameters, "[{name: q, in: query, schema: {type: string}}]", "[{name: q, in: query, deprecated: true, schema: {type: string}}]", ["backward parameter-deprecated INFO"]),
        api("parameter-style-changed", "style or explode of an array or object parameter changed: the two releases spell its values differently (ids=1,2 against ids=1&ids=2).",
            .parameters, "[{name: ids, in: query, schema: {type: array, items: {type: integer}}}]", "[{name: ids, in: query, explode: false, schema: {type: array, items: {type: integer}}}]",
            ["backward parameter-style-changed ERR", "forward parameter-style-changed ERR"]),
        api("parameter-media-type-changed", "A parameter is written as a media type (content) in one release and otherwise in the other, or as another media type.",
            .parameters, "[{name: filter, in: query, schema: {type: object}}]", "[{name: filter, in: query, content: {application/json: {schema: {type: object}}}}]",
            ["backward parameter-media-type-changed ERR", "forward parameter-media-type-changed ERR"]),
        api("parameter-became-array", "A parameter that took one value takes several: the single value a client built for OLD sends is a list of one (a client built for NEW may send several, which OLD rejects).",
            .parameters, "[{name: id, in: query, schema: {type: integer}}]", "[{name: id, in: query, schema: {type: array, items: {type: integer}}}]",
            ["backward parameter-became-array INFO", "forward parameter.type-changed ERR"]),

        // Request bodies.
        api("request-body-added", "NEW takes a request body OLD did not: a server still on OLD ignores it.",
            .operation, "{responses: \(ok)}", "{requestBody: {content: {application/json: {schema: {type: object}}}}, responses: \(ok)}", ["forward request-body-added WARN"]),
        api("request-body-added-required", "A server running NEW requires a body clients built for OLD do not send.",
            .operation, "{responses: \(ok)}", "{requestBody: {required: true, content: {application/json: {schema: {type: object}}}}, responses: \(ok)}",
            ["backward request-body-added-required ERR", "forward request-body-added WARN"]),
        api("request-body-removed", "NEW takes no body: a server still on OLD that requires one rejects clients built for NEW.",
            .operation, "{requestBody: {required: true, content: {application/json: {schema: {type: object}}}}, responses: \(ok)}", "{responses: \(ok)}",
            ["backward request-body-removed WARN", "forward request-body-removed ERR"]),
        api("request-body-became-required", "A server running NEW requires the body clients built for OLD may omit.",
            .operation, "{requestBody: {content: {application/json: {schema: {type: object}}}}, responses: \(ok)}", "{requestBody: {required: true, content: {application/json: {schema: {type: object}}}}, responses: \(ok)}",
            ["backward request-body-became-required ERR"]),
        api("request-body-became-optional", "Clients built for NEW may omit the body a server still on OLD requires.",
            .operation, "{requestBody: {required: true, content: {application/json: {schema: {type: object}}}}, responses: \(ok)}", "{requestBody: {content: {application/json: {schema: {type: object}}}}, responses: \(ok)}",
            ["forward request-body-became-optional ERR"]),
        api("request-media-type-removed", "A server running NEW no longer accepts a media type clients built for OLD send (415).",
            .operation, "{requestBody: {content: {application/json: {schema: {type: object}}, application/xml: {schema: {type: object}}}}, responses: \(ok)}",
            "{requestBody: {content: {application/json: {schema: {type: object}}}}, responses: \(ok)}", ["backward request-media-type-removed ERR"]),
        api("request-media-type-added", "Clients built for NEW may send a media type a server still on OLD does not accept (415).",
            .operation, "{requestBody: {content: {application/json: {schema: {type: object}}}}, responses: \(ok)}",
            "{requestBody: {content: {application/json: {schema: {type: object}}, application/xml: {schema: {type: object}}}}, responses: \(ok)}", ["forward request-media-type-added WARN"]),

        // Responses.
        api("response-status-added", "A server running NEW may answer a status clients built for OLD do not expect.",
            .operation, "{responses: \(ok)}", "{responses: {\"200\": {description: ok}, \"409\": {description: conflict}}}", ["backward response-status-added WARN"]),
        api("response-status-removed", "A server still on OLD may answer a status clients built for NEW no longer expect.",
            .operation, "{responses: {\"200\": {description: ok}, \"409\": {description: conflict}}}", "{responses: \(ok)}", ["forward response-status-removed WARN"]),
        api("success-status-changed", "None of the success statuses clients built for OLD know remain: they read every success as a failure.",
            .operation, "{responses: \(ok)}", "{responses: {\"201\": {description: created}}}",
            ["backward success-status-changed ERR", "backward response-status-added WARN", "forward response-status-removed WARN"]),
        api("response-media-type-removed", "A server running NEW no longer sends a media type clients built for OLD expect.",
            .operation, "{responses: {\"200\": {description: ok, content: {application/json: {schema: {type: object}}, application/xml: {schema: {type: object}}}}}}",
            "{responses: {\"200\": {description: ok, content: {application/json: {schema: {type: object}}}}}}", ["backward response-media-type-removed ERR"]),
        api("response-media-type-added", "Clients built for NEW may expect a media type a server still on OLD does not send.",
            .operation, "{responses: {\"200\": {description: ok, content: {application/json: {schema: {type: object}}}}}}",
            "{responses: {\"200\": {description: ok, content: {application/json: {schema: {type: object}}, application/xml: {schema: {type: object}}}}}}", ["forward response-media-type-added WARN"]),
        api("response-header-removed", "A response header is gone: an error when it was required (clients built for OLD rely on it), a note when optional.",
            .operation, "{responses: {\"200\": {description: ok, headers: {ETag: {required: true, schema: {type: string}}}}}}", "{responses: \(ok)}", ["backward response-header-removed ERR"]),
        api("response-header-became-optional", "A server running NEW may omit a response header clients built for OLD rely on.",
            .operation, "{responses: {\"200\": {description: ok, headers: {ETag: {required: true, schema: {type: string}}}}}}",
            "{responses: {\"200\": {description: ok, headers: {ETag: {schema: {type: string}}}}}}", ["backward response-header-became-optional ERR"]),
        api("response-header-added-required", "Clients built for NEW rely on a response header a server still on OLD does not promise.",
            .operation, "{responses: \(ok)}", "{responses: {\"200\": {description: ok, headers: {ETag: {required: true, schema: {type: string}}}}}}", ["forward response-header-added-required ERR"]),
        api("link-removed", "A response link clients built for OLD may follow is gone from NEW.",
            .operation, "{responses: {\"200\": {description: ok, links: {self: {operationId: getItem}}}}}", "{responses: \(ok)}", ["backward link-removed WARN"]),
        api("link-added", "NEW documents a response link a server still on OLD does not.",
            .operation, "{responses: \(ok)}", "{responses: {\"200\": {description: ok, links: {self: {operationId: getItem}}}}}", ["forward link-added INFO"]),
        api("link-changed", "A response link leads to another operation, or with other values, in NEW.",
            .operation, "{responses: {\"200\": {description: ok, links: {self: {operationId: getItem}}}}}",
            "{responses: {\"200\": {description: ok, links: {self: {operationId: fetchItem}}}}}", ["backward link-changed WARN"]),

        // Schemas (request and response bodies, parameters, headers, messages).
        api("constrained", "The consumer constrains a value the producer treats as free-form ({}).",
            .responseBody, "{}", "{type: string}", ["forward response-body.constrained WARN"]),
        api("null-not-accepted", "The producer may send null, which the consumer rejects.",
            .responseBody, "{type: string}", "{type: [string, \"null\"]}", ["backward response-body.null-not-accepted ERR", "forward response-body.null-accepted INFO"]),
        api("null-accepted", "The consumer also accepts null.",
            .requestBody, "{type: string}", "{type: [string, \"null\"]}", ["backward request-body.null-accepted INFO", "forward request-body.null-not-accepted ERR"]),
        api("alternative-not-accepted", "The producer may send a oneOf/anyOf alternative the consumer does not accept, or a value none of the consumer's alternatives matches.",
            .responseBody, "{oneOf: [{type: string}, {type: integer}]}", "{oneOf: [{type: string}, {type: integer}, {type: boolean}]}",
            ["backward response-body.alternative-not-accepted ERR", "forward response-body.alternative-added INFO"]),
        api("alternative-added", "The consumer accepts more alternatives than the producer sends.",
            .requestBody, "{oneOf: [{type: string}, {type: integer}]}", "{oneOf: [{type: string}, {type: integer}, {type: boolean}]}",
            ["backward request-body.alternative-added INFO", "forward request-body.alternative-not-accepted ERR"]),
        api("one-of-ambiguous", "What the producer sends matches two alternatives of the consumer's oneOf, which takes a value only when exactly one matches (a warning: shapes approximate).",
            .requestBody, "{type: object, required: [foo, bar], properties: {foo: {type: string}, bar: {type: string}}}",
            "{oneOf: [{type: object, required: [foo], properties: {foo: {type: string}}}, {type: object, required: [bar], properties: {bar: {type: string}}}]}",
            ["backward request-body.one-of-ambiguous WARN", "forward request-body.alternative-not-accepted ERR"]),
        api("type-changed", "The producer sends a type the consumer does not accept (or the consumer accepts nothing: false).",
            .requestBody, "{type: integer}", "{type: string}", ["backward request-body.type-changed ERR", "forward request-body.type-changed ERR"]),
        api("type-widened", "The consumer accepts more types than the producer sends (integer within number).",
            .requestBody, "{type: integer}", "{type: number}", ["backward request-body.type-widened INFO", "forward request-body.type-changed ERR"]),
        api("enum-value-not-accepted", "The producer may send an enum value (or const) the consumer does not know.",
            .responseBody, "{type: string, enum: [open, done]}", "{type: string, enum: [open, done, archived]}",
            ["backward response-body.enum-value-not-accepted ERR", "forward response-body.enum-value-added INFO"]),
        api("enum-value-added", "The consumer accepts enum values the producer never sends.",
            .requestBody, "{type: string, enum: [open, done]}", "{type: string, enum: [open, done, archived]}",
            ["backward request-body.enum-value-added INFO", "forward request-body.enum-value-not-accepted ERR"]),
        api("enum-added", "The consumer accepts only listed values where the producer may send any.",
            .requestBody, "{type: string}", "{type: string, enum: [open, done]}", ["backward request-body.enum-added ERR", "forward request-body.enum-removed INFO"]),
        api("enum-removed", "The consumer accepts any value, not only the listed ones.",
            .responseBody, "{type: string}", "{type: string, enum: [open, done]}", ["backward response-body.enum-removed INFO", "forward response-body.enum-added ERR"]),
        api("default-changed", "The default differs: an omitted value means different things to the two releases.",
            .requestBody, "{type: integer, default: 10}", "{type: integer, default: 20}", ["backward request-body.default-changed WARN", "forward request-body.default-changed WARN"]),
        api("format-changed", "The consumer expects a format the producer does not promise (a warning: JSON Schema 2020-12 makes format an annotation).",
            .requestBody, "{type: string}", "{type: string, format: uuid}", ["backward request-body.format-changed WARN"]),
        api("pattern-added", "The consumer checks a pattern where the producer had none: some values are rejected.",
            .requestBody, "{type: string}", "{type: string, pattern: \"^[a-z]+$\"}", ["backward request-body.pattern-added ERR"]),
        api("pattern-changed", "The consumer checks another pattern (whether one pattern admits everything another does is not decided: a warning).",
            .requestBody, "{type: string, pattern: \"^[a-z]+$\"}", "{type: string, pattern: \"^[a-z0-9]+$\"}",
            ["backward request-body.pattern-changed WARN", "forward request-body.pattern-changed WARN"]),
        api("content-changed", "The consumer expects a string to carry another contentMediaType, contentEncoding or contentSchema.",
            .requestBody, "{type: string}", "{type: string, contentMediaType: application/json}", ["backward request-body.content-changed WARN"]),
        api("multiple-of-changed", "The consumer takes only multiples of a number the producer's values need not be multiples of.",
            .requestBody, "{type: integer}", "{type: integer, multipleOf: 5}", ["backward request-body.multiple-of-changed ERR", "forward request-body.multiple-of-changed INFO"]),
        api("bound-tightened", "A minimum, maximum (exclusive or not), length, item, property or contains count is stricter for the consumer than for the producer.",
            .requestBody, "{type: string, maxLength: 100}", "{type: string, maxLength: 50}", ["backward request-body.bound-tightened ERR", "forward request-body.bound-loosened INFO"]),
        api("bound-loosened", "The consumer allows more than the producer keeps to.",
            .responseBody, "{type: integer, minimum: 1}", "{type: integer, minimum: 0}", ["backward response-body.bound-tightened ERR", "forward response-body.bound-loosened INFO"]),
        api("required-property-missing", "The consumer requires a property the producer may omit or no longer sends.",
            .requestBody, "{type: object, properties: {a: {type: string}}}", "{type: object, required: [a], properties: {a: {type: string}}}", ["backward request-body.required-property-missing ERR"]),
        api("property-rejected", "The producer sends a property the consumer rejects (additionalProperties or unevaluatedProperties false).",
            .responseBody, "{type: object, additionalProperties: false, properties: {a: {type: string}}}", "{type: object, additionalProperties: false, properties: {a: {type: string}, b: {type: string}}}",
            ["backward response-body.property-rejected ERR", "forward response-body.property-not-sent INFO"]),
        api("property-ignored", "The producer sends a property the consumer does not read: a warning for a server (its value is dropped), a note for a client.",
            .requestBody, "{type: object, properties: {a: {type: string}, b: {type: string}}}", "{type: object, properties: {a: {type: string}}}",
            ["backward request-body.property-ignored WARN", "forward request-body.property-not-sent INFO"]),
        api("property-not-sent", "The consumer reads an optional property the producer never sends.",
            .responseBody, "{type: object, properties: {a: {type: string}, b: {type: string}}}", "{type: object, properties: {a: {type: string}}}",
            ["backward response-body.property-not-sent INFO", "forward response-body.property-ignored INFO"]),
        api("property-deprecated", "NEW marks a schema or property deprecated.",
            .responseBody, "{type: object, properties: {a: {type: string}}}", "{type: object, properties: {a: {type: string, deprecated: true}}}", ["backward response-body.property-deprecated INFO"]),
        api("additional-properties-forbidden", "The consumer rejects properties it does not list, which the producer does not rule out.",
            .requestBody, "{type: object, properties: {a: {type: string}}}", "{type: object, additionalProperties: false, properties: {a: {type: string}}}",
            ["backward request-body.additional-properties-forbidden WARN"]),
        api("pattern-property-added", "The consumer checks properties whose names match a pattern the producer does not constrain.",
            .requestBody, "{type: object}", "{type: object, patternProperties: {\"^x-\": {type: string}}}", ["backward request-body.pattern-property-added WARN"]),
        api("property-names-restricted", "The consumer restricts property names (propertyNames): an error for a name the producer sends that fails it, a warning otherwise.",
            .requestBody, "{type: object, properties: {Name: {type: string}}}", "{type: object, properties: {Name: {type: string}}, propertyNames: {pattern: \"^[a-z]+$\"}}",
            ["backward request-body.property-names-restricted ERR", "backward request-body.property-names-restricted WARN"]),
        api("dependent-required-added", "With one property present the consumer requires others (dependentRequired) the producer may omit.",
            .requestBody, "{type: object, properties: {card: {type: string}, cvv: {type: string}}}", "{type: object, properties: {card: {type: string}, cvv: {type: string}}, dependentRequired: {card: [cvv]}}",
            ["backward request-body.dependent-required-added ERR"]),
        api("dependent-schema-added", "With one property present the consumer checks the object against a schema (dependentSchemas) the producer does not keep to.",
            .requestBody, "{type: object, properties: {card: {type: string}, cvv: {type: string}}}", "{type: object, properties: {card: {type: string}, cvv: {type: string}}, dependentSchemas: {card: {required: [cvv]}}}",
            ["backward request-body.dependent-schema-added ERR"]),
        api("unique-items-added", "The consumer rejects arrays with repeated items, which the producer may send.",
            .requestBody, "{type: array, items: {type: string}}", "{type: array, items: {type: string}, uniqueItems: true}", ["backward request-body.unique-items-added ERR"]),
        api("items-rejected", "The producer may send array items the consumer rejects (items: false after prefixItems, or unevaluatedItems: false).",
            .requestBody, "{type: array, items: {type: string}}", "{type: array, prefixItems: [{type: string}], items: false}", ["backward request-body.items-rejected ERR"]),
        api("contains-added", "The consumer requires items matching its contains (minContains times) that the producer does not promise.",
            .requestBody, "{type: array, items: {type: string}}", "{type: array, items: {type: string}, contains: {const: admin}}", ["backward request-body.contains-added ERR"]),
        api("not-added", "The consumer rejects values matching a new `not`: an error when that is everything the producer sends, a warning when some.",
            .requestBody, "{type: string}", "{type: string, not: {enum: [root]}}", ["backward request-body.not-added WARN"]),
        api("conditional-added", "The consumer checks values against if/then/else branches the producer does not keep to (a condition the producer never meets asks nothing).",
            .requestBody, "{type: object, properties: {country: {type: string}, zip: {type: string}}}",
            "{type: object, properties: {country: {type: string}, zip: {type: string}}, if: {required: [country], properties: {country: {const: US}}}, then: {required: [zip]}}",
            ["backward request-body.conditional-added ERR"]),
        api("comparison-incomplete", "The schemas branch into more comparisons than Baton makes (references reused at every level expand exponentially); the rest is not compared.",
            .responseBody, branching, branching, ["backward response-body.comparison-incomplete WARN", "forward response-body.comparison-incomplete WARN"]),
        api("discriminator-changed", "The two releases pick a oneOf/anyOf alternative by different discriminator properties, or map a value to different schemas.",
            .responseBody, "{oneOf: [\(item), {type: object, properties: {kind: {const: dog}}}], discriminator: {propertyName: kind}}",
            "{oneOf: [\(item), {type: object, properties: {kind: {const: dog}}}], discriminator: {propertyName: type}}",
            ["backward response-body.discriminator-changed ERR", "forward response-body.discriminator-changed ERR"]),
        api("discriminator-mapping-removed", "The producer may send a discriminator value the consumer's mapping no longer lists.",
            .responseBody, "{oneOf: [\(item), {type: object, properties: {kind: {const: dog}}}], discriminator: {propertyName: kind, mapping: {cat: \"#/x/Cat\", dog: \"#/x/Dog\"}}}",
            "{oneOf: [\(item), {type: object, properties: {kind: {const: dog}}}], discriminator: {propertyName: kind, mapping: {cat: \"#/x/Cat\"}}}",
            ["forward response-body.discriminator-mapping-removed ERR"]),
    ]
}

// MARK: Output

extension RuleCatalogue {
    /// One block per rule: id, level, directions, the sentence and the example.
    public static func text() -> String {
        var lines: [String] = []
        for scope in [Rule.Scope.document, .operation, .schema, .lint] {
            lines.append(heading(scope))
            for rule in rules where rule.scope == scope {
                lines.append("  \(rule.level.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0))\(rule.id)  (\(directions(rule)))")
                lines.append("       \(rule.summary)")
                lines.append("       e.g. \(example(rule))")
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    public static func markdown() -> String {
        func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
        var lines = ["# Compatibility rules", "",
                     "Generated by `baton compat rules --format markdown`; the tests compare every example and expect exactly the findings listed.",
                     "Schema rules are reported with the place as a prefix: `request-body.`, `response-body.`, `parameter.`, `response-header.` or `message.`.",
                     "backward: a client built for OLD calling a server running NEW (for messages: a consumer on NEW reading what OLD wrote); forward: the other way round.", ""]
        for scope in [Rule.Scope.document, .operation, .schema, .lint] {
            lines += ["## \(heading(scope))", "", "| id | level | direction | rule | example | findings of the example |", "|---|---|---|---|---|---|"]
            for rule in rules where rule.scope == scope {
                lines.append("| `\(rule.id)` | \(rule.level.rawValue) | \(directions(rule)) | \(cell(rule.summary)) | \(cell(example(rule))) | \(cell(rule.example.expected.map(\.description).joined(separator: "; "))) |")
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    public static func json() throws -> String {
        struct Entry: Encodable {
            var id: String, scope: Rule.Scope, level: Finding.Level, directions: [Finding.Direction], summary: String
            var example: Example
        }
        struct Example: Encodable {
            var kind: RuleCatalogue.Example.Kind, old: String, new: String, findings: [String]
        }
        let entries = rules.map { rule in
            Entry(id: rule.id, scope: rule.scope, level: rule.level, directions: rule.directions, summary: rule.summary,
                  example: Example(kind: rule.example.kind, old: rule.example.old, new: rule.example.new, findings: rule.example.expected.map(\.description)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(entries), as: UTF8.self)
    }

    private static func heading(_ scope: Rule.Scope) -> String {
        switch scope {
        case .document: "Documents"
        case .operation: "Operations, webhooks and callbacks"
        case .schema: "Schemas (bodies, parameters, headers, messages)"
        case .lint: "Migration lint"
        }
    }

    private static func directions(_ rule: Rule) -> String {
        rule.scope == .lint ? "migration" : rule.directions.map(\.rawValue).joined(separator: ", ")
    }

    private static func example(_ rule: Rule) -> String {
        rule.example.kind == .migration ? rule.example.new : "\(rule.example.kind.rawValue): \(rule.example.old) → \(rule.example.new)".replacingOccurrences(of: "\n", with: " ")
    }
}
