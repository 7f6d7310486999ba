import BatonCompat
import BatonCore
import Foundation
import Testing

/// For every rule a pair of small specs and the exact findings in each direction
/// (direction, id, level); INFO findings included.
@Suite struct OpenAPICompatTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var old: String
        var new: String
        var expected: Set<String>
        var testDescription: String { name }
    }

    static func document(_ paths: String, openapi: String = "3.1.0", components: String = "") -> String {
        """
        openapi: \(openapi)
        info: {title: t, version: "1"}
        paths:
        \(paths)
        \(components.isEmpty ? "" : "components:\n  schemas:\n" + components)
        """
    }

    /// GET /items answering 200 with `schema` (a YAML flow mapping).
    static func response(_ schema: String, extra: String = "") -> String {
        document("""
          /items:
            get:
              responses:
                "200":
                  description: ok
                  content: {application/json: {schema: \(schema)}}
        \(extra)
        """)
    }

    /// POST /items taking `schema` as its body.
    static func request(_ schema: String, required: Bool = true) -> String {
        document("""
          /items:
            post:
              requestBody: {required: \(required), content: {application/json: {schema: \(schema)}}}
              responses: {"204": {description: ok}}
        """)
    }

    /// GET /items answering 200 with response `headers` (a YAML flow mapping).
    static func headers(_ map: String) -> String {
        document("""
          /items:
            get:
              responses: {"200": {description: ok, headers: \(map)}}
        """)
    }

    /// GET /items with operation `security` (a YAML flow list, or nil for none) and the schemes
    /// bearer (HTTP), key (an API key header) and oauth (read, write scopes).
    static func secured(_ security: String?) -> String {
        """
        openapi: 3.1.0
        info: {title: t, version: "1"}
        paths:
          /items:
            get:
              \(security.map { "security: \($0)" } ?? "")
              responses: {"200": {description: ok}}
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer}
            key: {type: apiKey, in: header, name: X-Key}
            oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://auth.example/token", scopes: {read: r, write: w}}}}
        """
    }

    /// Webhook `event` whose payload is `schema`.
    static func webhook(_ schema: String, required: Bool = true) -> String {
        """
        openapi: 3.1.0
        info: {title: t, version: "1"}
        webhooks:
          event: {post: {requestBody: {required: \(required), content: {application/json: {schema: \(schema)}}}, responses: {"200": {description: ok}}}}
        """
    }

    /// POST /subscribe with a callback `done` whose payload is `schema`.
    static func callback(_ schema: String) -> String {
        document("""
          /subscribe:
            post:
              responses: {"201": {description: ok}}
              callbacks:
                done:
                  "{$request.body#/url}": {post: {requestBody: {required: true, content: {application/json: {schema: \(schema)}}}, responses: {"200": {description: ok}}}}
        """)
    }

    static func parameters(_ list: String) -> String {
        document("""
          /items:
            get:
              parameters: \(list)
              responses: {"200": {description: ok}}
        """)
    }

    static let cases: [Case] = [
        Case(name: "operation removed", old: document("  /a: {get: {responses: {\"200\": {description: ok}}}}\n  /b: {get: {responses: {\"200\": {description: ok}}}}"),
             new: document("  /a: {get: {responses: {\"200\": {description: ok}}}}"), expected: ["backward operation-removed ERR"]),
        Case(name: "operation added", old: document("  /a: {get: {responses: {\"200\": {description: ok}}}}"),
             new: document("  /a: {get: {responses: {\"200\": {description: ok}}}, delete: {responses: {\"204\": {description: ok}}}}"), expected: ["forward operation-added WARN"]),
        Case(name: "path parameter renamed is the same operation",
             old: document("  /items/{id}: {get: {parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: {\"200\": {description: ok}}}}"),
             new: document("  /items/{itemId}: {get: {parameters: [{name: itemId, in: path, required: true, schema: {type: string}}], responses: {\"200\": {description: ok}}}}"), expected: []),
        Case(name: "path parameters listed in another order are the same parameters",
             old: document("  /orgs/{org}/teams/{team}: {get: {parameters: [{name: org, in: path, required: true, schema: {type: string}}, {name: team, in: path, required: true, schema: {type: integer}}], responses: {\"200\": {description: ok}}}}"),
             new: document("  /orgs/{org}/teams/{team}: {get: {parameters: [{name: team, in: path, required: true, schema: {type: integer}}, {name: org, in: path, required: true, schema: {type: string}}], responses: {\"200\": {description: ok}}}}"),
             expected: []),
        Case(name: "security added", old: secured(nil), new: secured("[{bearer: []}]"), expected: ["backward security-not-accepted ERR"]),
        Case(name: "security removed", old: secured("[{bearer: []}]"), new: secured(nil), expected: ["forward security-not-accepted ERR"]),
        Case(name: "security alternative added", old: secured("[{bearer: []}]"), new: secured("[{bearer: []}, {key: []}]"),
             expected: ["forward security-not-accepted ERR"]),
        Case(name: "oauth scope added", old: secured("[{oauth: [read]}]"), new: secured("[{oauth: [read, write]}]"),
             expected: ["backward security-not-accepted ERR"]),
        Case(name: "security scheme changed under its name", old: secured("[{key: []}]"), new: secured("[{key: []}]").replacingOccurrences(of: "X-Key", with: "X-Api-Key"),
             expected: ["backward security-not-accepted ERR", "forward security-not-accepted ERR"]),
        Case(name: "security unchanged", old: secured("[{bearer: [], key: []}]"), new: secured("[{key: [], bearer: []}]"), expected: []),
        Case(name: "required query parameter added", old: parameters("[]"), new: parameters("[{name: q, in: query, required: true, schema: {type: string}}]"),
             expected: ["backward parameter-added-required ERR", "forward parameter-added WARN"]),
        Case(name: "parameter became required", old: parameters("[{name: q, in: query, schema: {type: string}}]"), new: parameters("[{name: q, in: query, required: true, schema: {type: string}}]"),
             expected: ["backward parameter-became-required ERR"]),
        Case(name: "parameter became optional", old: parameters("[{name: q, in: query, required: true, schema: {type: string}}]"), new: parameters("[{name: q, in: query, schema: {type: string}}]"),
             expected: ["forward parameter-became-optional ERR"]),
        Case(name: "optional parameter removed", old: parameters("[{name: q, in: query, schema: {type: string}}]"), new: parameters("[]"),
             expected: ["backward parameter-removed WARN"]),
        Case(name: "parameter enum narrowed", old: parameters("[{name: sort, in: query, schema: {type: string, enum: [name, date]}}]"), new: parameters("[{name: sort, in: query, schema: {type: string, enum: [name]}}]"),
             expected: ["backward parameter.enum-value-not-accepted ERR", "forward parameter.enum-value-added INFO"]),
        Case(name: "request body became required", old: request("{type: object}", required: false), new: request("{type: object}"),
             expected: ["backward request-body-became-required ERR"]),
        Case(name: "request media type removed",
             old: document("  /items:\n    post:\n      requestBody: {content: {application/json: {schema: {type: object}}, text/plain: {schema: {type: string}}}}\n      responses: {\"204\": {description: ok}}"),
             new: request("{type: object}", required: false), expected: ["backward request-media-type-removed ERR"]),
        Case(name: "required request property added",
             old: request("{type: object, properties: {a: {type: string}}}"), new: request("{type: object, required: [b], properties: {a: {type: string}, b: {type: string}}}"),
             expected: ["backward request-body.required-property-missing ERR", "forward request-body.property-ignored WARN"]),
        // oneOf is exclusive: an object old clients send with both fields matches both new
        // branches, so a NEW server rejects every one of them (an anyOf would accept it).
        Case(name: "required fields rewritten as oneOf",
             old: request("{type: object, required: [foo, bar], properties: {foo: {type: string}, bar: {type: string}}}"),
             new: request("{oneOf: [{type: object, required: [foo], properties: {foo: {type: string}}}, {type: object, required: [bar], properties: {bar: {type: string}}}]}"),
             expected: ["backward request-body.one-of-ambiguous WARN", "forward request-body.alternative-not-accepted ERR"]),
        Case(name: "a oneOf with overlapping branches against itself is no change",
             old: response("{oneOf: [{type: object, properties: {kind: {type: string}, meow: {type: string}}}, {type: object, properties: {kind: {type: string}, bark: {type: string}}}]}"),
             new: response("{oneOf: [{type: object, properties: {kind: {type: string}, meow: {type: string}}}, {type: object, properties: {kind: {type: string}, bark: {type: string}}}]}"),
             expected: []),
        Case(name: "a discriminated oneOf is chosen by its property",
             old: request("{type: object, required: [kind], properties: {kind: {type: string}}}"),
             new: request("{oneOf: [{type: object, required: [kind], properties: {kind: {type: string}}}, {type: object, required: [kind], properties: {kind: {type: string}, extra: {type: string}}}], discriminator: {propertyName: kind}}"),
             expected: []),
        Case(name: "response header became optional",
             old: headers("{X-Rate: {required: true, schema: {type: integer}}}"), new: headers("{X-Rate: {schema: {type: integer}}}"),
             expected: ["backward response-header-became-optional ERR"]),
        Case(name: "response header names compare without case",
             old: headers("{ETag: {required: true, schema: {type: string}}}"), new: headers("{Etag: {required: true, schema: {type: string}}}"),
             expected: []),
        Case(name: "a success status still known is no change",
             old: document("  /items: {post: {responses: {\"200\": {description: ok}, \"204\": {description: empty}}}}"),
             new: document("  /items: {post: {responses: {\"204\": {description: empty}}}}"),
             expected: ["forward response-status-removed WARN"]),
        Case(name: "optional response header removed",
             old: headers("{X-Rate: {schema: {type: integer}}}"), new: headers("{}"),
             expected: ["backward response-header-removed INFO"]),
        Case(name: "response header type changed",
             old: headers("{X-Rate: {schema: {type: integer}}}"), new: headers("{X-Rate: {schema: {type: string}}}"),
             expected: ["backward response-header.type-changed ERR", "forward response-header.type-changed ERR"]),
        Case(name: "success status changed",
             old: document("  /items: {post: {responses: {\"200\": {description: ok}}}}"), new: document("  /items: {post: {responses: {\"201\": {description: created}}}}"),
             expected: ["backward success-status-changed ERR", "backward response-status-added WARN", "forward response-status-removed WARN"]),
        Case(name: "const changed (an enum of one)", old: response("{const: a}"), new: response("{const: b}"),
             expected: ["backward response-body.enum-value-not-accepted ERR", "forward response-body.enum-value-not-accepted ERR"]),
        Case(name: "required fields rewritten as anyOf",
             old: request("{type: object, required: [foo, bar], properties: {foo: {type: string}, bar: {type: string}}}"),
             new: request("{anyOf: [{type: object, required: [foo], properties: {foo: {type: string}}}, {type: object, required: [bar], properties: {bar: {type: string}}}]}"),
             expected: ["forward request-body.alternative-not-accepted ERR"]),
        Case(name: "required response property removed",
             old: response("{type: object, required: [a, b], properties: {a: {type: string}, b: {type: string}}}"), new: response("{type: object, required: [a], properties: {a: {type: string}}}"),
             expected: ["backward response-body.required-property-missing ERR", "forward response-body.property-ignored INFO"]),
        Case(name: "response enum value added breaks strict old clients",
             old: response("{type: string, enum: [open, done]}"), new: response("{type: string, enum: [open, done, archived]}"),
             expected: ["backward response-body.enum-value-not-accepted ERR", "forward response-body.enum-value-added INFO"]),
        Case(name: "request enum value added breaks old servers",
             old: request("{type: string, enum: [open, done]}"), new: request("{type: string, enum: [open, done, archived]}"),
             expected: ["forward request-body.enum-value-not-accepted ERR", "backward request-body.enum-value-added INFO"]),
        Case(name: "response type changed", old: response("{type: string}"), new: response("{type: integer}"),
             expected: ["backward response-body.type-changed ERR", "forward response-body.type-changed ERR"]),
        Case(name: "allOf merged before comparing",
             old: response("{allOf: [{type: object, required: [a], properties: {a: {type: string}}}, {type: object, properties: {b: {type: integer}}}]}"),
             new: response("{type: object, required: [a], properties: {a: {type: string}, b: {type: integer}}}"), expected: []),
        Case(name: "a readOnly property made required does not bind requests",
             old: request("{type: object, properties: {id: {type: integer, readOnly: true}, name: {type: string}}}"),
             new: request("{type: object, required: [id], properties: {id: {type: integer, readOnly: true}, name: {type: string}}}"), expected: []),
        Case(name: "a writeOnly property dropped from a response is not a change",
             old: response("{type: object, required: [password], properties: {password: {type: string, writeOnly: true}}}"),
             new: response("{type: object, properties: {}}"), expected: []),
        Case(name: "OpenAPI 3.0 nullable equals 3.1 null type",
             old: document("  /items: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {type: string, nullable: true}}}}}}}", openapi: "3.0.3"),
             new: response("{type: [string, \"null\"]}"), expected: []),
        Case(name: "webhook removed", old: webhook("{type: object}"), new: document("  /a: {get: {responses: {\"200\": {description: ok}}}}"),
             expected: ["backward operation-removed ERR", "forward operation-removed WARN", "forward operation-added WARN"]),
        Case(name: "webhook request body made required: the server sends it, so clients built for NEW may rely on it",
             old: webhook("{type: object}", required: false), new: webhook("{type: object}"), expected: ["forward request-body-became-required ERR"]),
        Case(name: "webhook payload gains a required field: a server still on OLD may omit it",
             old: webhook("{type: object, properties: {id: {type: string}}}"), new: webhook("{type: object, required: [id], properties: {id: {type: string}}}"),
             expected: ["forward request-body.required-property-missing ERR"]),
        Case(name: "callback payload enum grows: clients built for OLD receive a value they do not know",
             old: callback("{type: string, enum: [ok, failed]}"), new: callback("{type: string, enum: [ok, failed, cancelled]}"),
             expected: ["backward request-body.enum-value-not-accepted ERR", "forward request-body.enum-value-added INFO"]),
        Case(name: "a condition the producer never meets asks nothing of it",
             old: request("{type: object, required: [country], properties: {country: {enum: [CA]}, zip: {type: string}}}"),
             new: request("{type: object, required: [country], properties: {country: {enum: [CA]}, zip: {type: string}}, if: {properties: {country: {const: US}}}, then: {required: [zip]}}"),
             expected: []),
        Case(name: "a not that excludes another type is no change", old: request("{type: string}"), new: request("{type: string, not: {type: integer}}"), expected: []),
        Case(name: "a not matching everything the producer sends", old: request("{type: string, enum: [a]}"), new: request("{type: string, enum: [a], not: {const: a}}"),
             expected: ["backward request-body.not-added ERR"]),
        Case(name: "OpenAPI 3.0 exclusiveMinimum flag equals the 3.1 number",
             old: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {type: number, minimum: 0, exclusiveMinimum: true}}}}, responses: {\"204\": {description: ok}}}}", openapi: "3.0.3"),
             new: request("{type: number, exclusiveMinimum: 0}"), expected: []),
        Case(name: "an exclusive minimum is tighter than the same inclusive one",
             old: request("{type: number, minimum: 0}"), new: request("{type: number, exclusiveMinimum: 0}"),
             expected: ["backward request-body.bound-tightened ERR", "forward request-body.bound-loosened INFO"]),
        Case(name: "unevaluatedProperties false rejects what is not listed",
             old: response("{type: object, unevaluatedProperties: false, properties: {a: {type: string}}}"), new: response("{type: object, unevaluatedProperties: false, properties: {a: {type: string}, b: {type: string}}}"),
             expected: ["backward response-body.property-rejected ERR", "forward response-body.property-not-sent INFO"]),
        Case(name: "a property matching patternProperties is not an extra one",
             old: response("{type: object, additionalProperties: false, patternProperties: {\"^x-\": {type: string}}}"), new: response("{type: object, properties: {x-trace: {type: string}}}"),
             expected: ["forward response-body.property-not-sent INFO", "backward response-body.additional-properties-forbidden WARN", "backward response-body.pattern-property-added WARN"]),
        Case(name: "a patternProperties schema changed", old: request("{type: object, patternProperties: {\"^x-\": {type: string}}}"), new: request("{type: object, patternProperties: {\"^x-\": {type: integer}}}"),
             expected: ["backward request-body.type-changed ERR", "forward request-body.type-changed ERR"]),
        Case(name: "a tuple's item type changed", old: request("{type: array, prefixItems: [{type: string}, {type: integer}]}"), new: request("{type: array, prefixItems: [{type: string}, {type: string}]}"),
             expected: ["backward request-body.type-changed ERR", "forward request-body.type-changed ERR"]),
        Case(name: "OpenAPI 3.0 nullable oneOf equals 3.1 oneOf with null",
             old: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {nullable: true, oneOf: [{type: string}, {type: integer}]}}}}, responses: {\"204\": {description: ok}}}}", openapi: "3.0.3"),
             new: request("{oneOf: [{type: string}, {type: integer}, {type: \"null\"}]}"), expected: []),
        Case(name: "a $ref with sibling keywords applies both",
             old: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {$ref: \"#/components/schemas/Name\"}}}}, responses: {\"204\": {description: ok}}}}",
                           components: "    Name: {type: string}"),
             new: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {$ref: \"#/components/schemas/Name\", maxLength: 10}}}}, responses: {\"204\": {description: ok}}}}",
                           components: "    Name: {type: string}"),
             expected: ["backward request-body.bound-tightened ERR", "forward request-body.bound-loosened INFO"]),
        Case(name: "minContains raised", old: request("{type: array, contains: {type: integer}}"), new: request("{type: array, contains: {type: integer}, minContains: 2}"),
             expected: ["backward request-body.contains-added ERR"]),
        Case(name: "a path-level parameter given as content changes media type",
             old: parameters("[{name: f, in: query, content: {application/json: {schema: {type: object}}}}]"), new: parameters("[{name: f, in: query, content: {text/plain: {schema: {type: object}}}}]"),
             expected: ["backward parameter-media-type-changed ERR", "forward parameter-media-type-changed ERR"]),
        Case(name: "style of a single-value parameter changed is no change",
             old: parameters("[{name: id, in: query, schema: {type: integer}}]"), new: parameters("[{name: id, in: query, explode: false, schema: {type: integer}}]"), expected: []),
        Case(name: "a constraint added to a property in another allOf part",
             old: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {allOf: [{$ref: \"#/components/schemas/Base\"}]}}}}, responses: {\"204\": {description: ok}}}}",
                           components: "    Base: {type: object, properties: {id: {type: string}}}"),
             new: document("  /items: {post: {requestBody: {required: true, content: {application/json: {schema: {allOf: [{$ref: \"#/components/schemas/Base\"}, {properties: {id: {maxLength: 10}}}]}}}}, responses: {\"204\": {description: ok}}}}",
                           components: "    Base: {type: object, properties: {id: {type: string}}}"),
             expected: ["backward request-body.bound-tightened ERR", "forward request-body.bound-loosened INFO"]),
        Case(name: "a variant added to a discriminated oneOf in a response: its value is unknown to old clients",
             old: document("  /items: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {oneOf: [{$ref: \"#/components/schemas/Cat\"}], discriminator: {propertyName: kind}}}}}}}}",
                           components: "    Cat: {type: object, properties: {kind: {type: string}}}\n    Dog: {type: object, properties: {kind: {type: string}, bark: {type: string}}}"),
             new: document("  /items: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {oneOf: [{$ref: \"#/components/schemas/Cat\"}, {$ref: \"#/components/schemas/Dog\"}], discriminator: {propertyName: kind}}}}}}}}",
                           components: "    Cat: {type: object, properties: {kind: {type: string}}}\n    Dog: {type: object, properties: {kind: {type: string}, bark: {type: string}}}"),
             expected: ["backward response-body.discriminator-mapping-removed ERR", "forward response-body.alternative-added INFO"]),
        Case(name: "a const without a type is a string like the enum it replaces", old: response("{type: string, enum: [dog]}"), new: response("{const: dog}"), expected: []),
        Case(name: "OpenAPI 3.0 nullable enum equals 3.1 enum with null",
             old: document("  /items: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {type: string, nullable: true, enum: [a]}}}}}}}", openapi: "3.0.3"),
             new: response("{type: [string, \"null\"], enum: [a, null]}"), expected: []),
        Case(name: "a value of two types taken by an alternative each", old: request("{type: [string, integer]}"), new: request("{oneOf: [{type: string}, {type: integer}]}"), expected: []),
        Case(name: "multipleOf 0.3 is a multiple of 0.1", old: request("{type: number, multipleOf: 0.3}"), new: request("{type: number, multipleOf: 0.1}"),
             expected: ["backward request-body.multiple-of-changed INFO", "forward request-body.multiple-of-changed ERR"]),
        Case(name: "readOnly in one allOf part and required in another leave requests alone",
             old: request("{type: object, properties: {id: {type: integer, readOnly: true}}}"),
             new: request("{allOf: [{type: object, properties: {id: {type: integer, readOnly: true}}}, {required: [id]}]}"), expected: []),
        Case(name: "a callback follows its operation when a path parameter is renamed",
             old: document("  /items/{id}: {post: {parameters: [{name: id, in: path, required: true, schema: {type: string}}], responses: {\"200\": {description: ok}}, callbacks: {done: {\"{$request.body#/url}\": {post: {responses: {\"200\": {description: ok}}}}}}}}"),
             new: document("  /items/{itemId}: {post: {parameters: [{name: itemId, in: path, required: true, schema: {type: string}}], responses: {\"200\": {description: ok}}, callbacks: {done: {\"{$request.body#/url}\": {post: {responses: {\"200\": {description: ok}}}}}}}}"),
             expected: []),
        Case(name: "the API's security does not bind the webhooks it sends",
             old: "openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\nwebhooks:\n  event: {post: {responses: {\"200\": {description: ok}}}}\n",
             new: "openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\nsecurity: [{key: []}]\nwebhooks:\n  event: {post: {responses: {\"200\": {description: ok}}}}\ncomponents: {securitySchemes: {key: {type: apiKey, in: header, name: X-Key}}}\n",
             expected: []),
        Case(name: "a response header named schema is a header",
             old: headers("{schema: {schema: {type: string}}}"), new: headers("{schema: {schema: {type: integer}}}"),
             expected: ["backward response-header.type-changed ERR", "forward response-header.type-changed ERR"]),
        Case(name: "header parameter names compare without case",
             old: parameters("[{name: X-Request-ID, in: header, schema: {type: string}}]"), new: parameters("[{name: X-Request-Id, in: header, schema: {type: string}}]"), expected: []),
        Case(name: "a $ref and the same schema inline are equal",
             old: document("  /items: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {$ref: \"#/components/schemas/Item\"}}}}}}}",
                           components: "    Item: {type: object, required: [id], properties: {id: {type: integer}}}"),
             new: response("{type: object, required: [id], properties: {id: {type: integer}}}"), expected: []),
    ]

    @Test(arguments: cases)
    func rule(_ test: Case) throws {
        let old = try OpenAPILoader.parse(test.old, file: "old.yaml")
        let new = try OpenAPILoader.parse(test.new, file: "new.yaml")
        let findings = OpenAPICompat.compare(old: old, new: new)
        let found = Set(findings.map { "\($0.direction.rawValue) \($0.id) \($0.level.rawValue)" })
        #expect(found == test.expected)
        for finding in findings {
            #expect(RuleCatalogue.rule(for: finding.id) != nil, "\(finding.id) is reported but not catalogued")
        }
    }

    /// Plain YAML scalars are typed as YAML 1.1 (Yams' default) reads them; quoted ones stay
    /// text; merge keys and aliases resolve; an unquoted number where text belongs is repaired.
    @Test func yamlScalarsReadAsYAML11() throws {
        let yaml = """
            openapi: 3.1.0
            info: {title: t, version: 1.0}
            paths:
              /items:
                post:
                  requestBody:
                    required: yes
                    content:
                      application/json:
                        schema:
                          type: object
                          properties:
                            flags: {enum: [yes, No, on, OFF, ~, null]}
                            sizes: {enum: [0x10, 0o17, 017, 1_000, +3, -2, .5, 1e3, 2024-01-01, "12", '0x10']}
                            base: &base {type: string, maxLength: 10}
                            merged: {<<: *base, minLength: 2}
                  responses: {'204': {description: ok}}
            """
        let json = #"""
            {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
             "paths": {"/items": {"post": {
               "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
                 "flags": {"enum": [true, false, true, false, null, null]},
                 "sizes": {"enum": [16, 15, 15, 1000, 3, -2, 0.5, 1000, "2024-01-01", "12", "0x10"]},
                 "base": {"type": "string", "maxLength": 10},
                 "merged": {"type": "string", "maxLength": 10, "minLength": 2}}}}}},
               "responses": {"204": {"description": "ok"}}}}}}
            """#
        let old = try OpenAPILoader.parse(yaml, file: "old.yaml")
        let findings = OpenAPICompat.compare(old: old, new: try OpenAPILoader.parse(json, file: "new.json"))
        #expect(findings.map(\.message) == ["info.version is not text; read as '1'"])
    }

    /// Hostile documents end with findings or one line, never a trap or a hang.
    @Test func hostileDocumentsNeitherCrashNorHang() throws {
        let huge = Self.request("{type: object, properties: {a: {type: string, maxLength: 1e19, minLength: 99999999999999999999}, b: {type: array, maxItems: .inf, minItems: .nan}, c: {enum: [-0x-8000000000000000, 0x-5, 0xFFFFFFFFFFFFFFFFFF]}}}")
        _ = OpenAPICompat.compare(old: try OpenAPILoader.parse(huge, file: "old.yaml"), new: try OpenAPILoader.parse(Self.request("{type: object}"), file: "new.yaml"))

        // Backtracking for ever on this name, if the pattern were run.
        let evil = Self.response("{type: object, additionalProperties: false, patternProperties: {\"^(a|a)*$\": {type: string}}}")
        let named = Self.response("{type: object, properties: {aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!: {type: string}}}")
        _ = OpenAPICompat.compare(old: try OpenAPILoader.parse(evil, file: "old.yaml"), new: try OpenAPILoader.parse(named, file: "new.yaml"))

        let laughs = "openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\nx-a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + (1...7).map { level in "x-\(level): &l\(level) [" + Array(repeating: level == 1 ? "*a" : "*l\(level - 1)", count: 10).joined(separator: ", ") + "]" }.joined(separator: "\n")
            + "\npaths: {}\n"
        let bomb = #expect(throws: BatonError.self) { try OpenAPILoader.parse(laughs, file: "laughs.yaml") }
        #expect(bomb?.description == "laughs.yaml: its aliases expand to more than 5,000,000 values", "\(bomb?.description ?? "")")
        let deep = "openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\nx-deep: " + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "\npaths: {}\n"
        let nested = #expect(throws: BatonError.self) { try OpenAPILoader.parse(deep, file: "deep.yaml") }
        #expect(nested?.description == "deep.yaml: nested more than 512 levels deep", "\(nested?.description ?? "")")
    }

    @Test func findingsNameOperationPointerAndReason() throws {
        let findings = OpenAPICompat.compare(
            old: try OpenAPILoader.parse(Self.response("{type: string, enum: [open, done]}"), file: "old.yaml"),
            new: try OpenAPILoader.parse(Self.response("{type: string, enum: [open, done, archived]}"), file: "new.yaml"))
        let finding = try #require(findings.first { $0.level == .err })
        #expect(finding.operation == "GET /items")
        #expect(finding.pointer == "/paths/~1items/get/responses/200/content/application~1json/schema")
        #expect(finding.message == "a server running NEW may send \"archived\", which a client built for OLD does not know")
    }

    @Test(arguments: [
        ("openapi: 3.1.0\ninfo: {title: t\npaths: {}\n", "bad.yaml: not valid YAML: line 3, column 6:"),
        ("swagger: \"2.0\"\ninfo: {title: t, version: \"1\"}\npaths: {}\n", "bad.yaml:1: swagger: Swagger 2.0 is not supported; convert the file to OpenAPI 3 first (for example with swagger2openapi)"),
        ("info: {title: t, version: \"1\"}\npaths: {}\n", "bad.yaml:1: (top level): not an OpenAPI document: expected a top-level 'openapi: 3.0.x' or '3.1.x'"),
        ("openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\npaths:\n  /a: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {$ref: \"#/components/schemas/Missing\"}}}}}}}\n", "bad.yaml: at /paths/~1a/get/responses/200/content/application~1json/schema: $ref '#/components/schemas/Missing' points at nothing"),
        ("openapi: 3.1.0\ninfo: {title: t, version: \"1\"}\npaths:\n  /a: {get: {responses: 5}}\n", "bad.yaml: at "),
        ("openapi: 2.5.0\ninfo: {title: t, version: \"1\"}\npaths: {}\n", "bad.yaml:1: openapi: version '2.5.0' is not supported; expected 3.0.x or 3.1.x"),
    ])
    func badDocumentsGiveOneLineErrors(text: String, prefix: String) {
        let error = #expect(throws: BatonError.self) { _ = try OpenAPILoader.parse(text, file: "bad.yaml") }
        #expect(error?.description.hasPrefix(prefix) == true, "\(error?.description ?? "")")
        #expect(error?.description.contains("\n") == false)
    }
}

extension OpenAPICompatTests {
    /// Two paths that differ only by a parameter name are two operations, each paired with its
    /// own counterpart, the same way on every run; a lone renamed parameter is the same operation.
    @Test func pathsThatDifferOnlyByAParameterNameCompareTheSameEveryRun() throws {
        let text = Self.document("""
          /items/{id}:
            get:
              parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
              responses: {"200": {description: ok, content: {application/json: {schema: {type: object, properties: {a: {type: string}}, required: [a]}}}}}
          /items/{itemId}:
            get:
              parameters: [{name: itemId, in: path, required: true, schema: {type: string}}]
              responses: {"200": {description: ok, content: {application/json: {schema: {type: object, properties: {b: {type: integer}}, required: [b]}}}}}
        """)
        let first = OpenAPICompat.compare(old: try OpenAPILoader.parse(text, file: "a.yaml"), new: try OpenAPILoader.parse(text, file: "a.yaml"))
        #expect(first.isEmpty, "\(first)")
        for _ in 0..<50 {
            let again = OpenAPICompat.compare(old: try OpenAPILoader.parse(text, file: "a.yaml"), new: try OpenAPILoader.parse(text, file: "a.yaml"))
            #expect(again == first)
        }
        let renamed = OpenAPICompat.compare(
            old: try OpenAPILoader.parse(Self.document("  /items/{id}: {get: {parameters: [{name: id, in: path, required: true, schema: {type: integer}}], responses: {\"200\": {description: ok}}}}"), file: "old.yaml"),
            new: try OpenAPILoader.parse(Self.document("  /items/{itemId}: {get: {parameters: [{name: itemId, in: path, required: true, schema: {type: integer}}], responses: {\"200\": {description: ok}}}}"), file: "new.yaml"))
        #expect(renamed.isEmpty, "\(renamed)")
    }
}

extension OpenAPICompatTests {
    /// A recursive schema loads and compares (one level deep): a change at the top is found.
    @Test func recursiveSchemasCompare() throws {
        func tree(_ extra: String) -> String {
            Self.document(
                "  /tree: {get: {responses: {\"200\": {description: ok, content: {application/json: {schema: {$ref: \"#/components/schemas/Node\"}}}}}}}",
                components: "    Node: {type: object, required: [name\(extra)], properties: {name: {type: string}, size: {type: integer}, children: {type: array, items: {$ref: \"#/components/schemas/Node\"}}}}")
        }
        let old = try OpenAPILoader.parse(tree(""), file: "old.yaml")
        #expect(old.notes.contains { $0.id == "document-repaired" && $0.message.contains("is recursive") })
        let same = OpenAPICompat.compare(old: old, new: try OpenAPILoader.parse(tree(""), file: "new.yaml")).filter { $0.level != .info }
        #expect(same.isEmpty, "\(same)")
        // NEW requires a field old servers do not send: old server → new client breaks.
        let changed = OpenAPICompat.compare(old: old, new: try OpenAPILoader.parse(tree(", size"), file: "new.yaml")).filter { $0.level != .info }
        #expect(changed.contains { $0.direction == .forward && $0.level == .err }, "\(changed)")
    }

    /// `$ref`s to other local files (relative to the file holding them, chained) are read;
    /// a URL is refused with the pointer, never fetched.
    @Test func referencesToOtherLocalFilesLoad() throws {
        let directory = NSTemporaryDirectory() + "baton-refs-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory + "/common", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "components:\n  schemas:\n    Error: {type: object, required: [code], properties: {code: {$ref: \"codes.yaml#/Code\"}}}\n"
            .write(toFile: directory + "/common/errors.yaml", atomically: true, encoding: .utf8)
        try "Code: {type: string, enum: [a, b]}\n".write(toFile: directory + "/common/codes.yaml", atomically: true, encoding: .utf8)
        let main = Self.document("  /x: {get: {responses: {\"400\": {description: bad, content: {application/json: {schema: {$ref: \"common/errors.yaml#/components/schemas/Error\"}}}}}}}")
        try main.write(toFile: directory + "/old.yaml", atomically: true, encoding: .utf8)
        try main.replacingOccurrences(of: "common/errors.yaml", with: "./common/../common/errors.yaml").write(toFile: directory + "/new.yaml", atomically: true, encoding: .utf8)
        try "Code: {type: string, enum: [a, b, c]}\n".write(toFile: directory + "/common/codes-new.yaml", atomically: true, encoding: .utf8)
        let old = try OpenAPILoader.load(path: directory + "/old.yaml")
        #expect(OpenAPICompat.compare(old: old, new: try OpenAPILoader.load(path: directory + "/new.yaml")).isEmpty)
        // The enum grows in the referenced file: old clients may get a code they do not know.
        try "components:\n  schemas:\n    Error: {type: object, required: [code], properties: {code: {$ref: \"codes-new.yaml#/Code\"}}}\n"
            .write(toFile: directory + "/common/errors.yaml", atomically: true, encoding: .utf8)
        let grown = OpenAPICompat.compare(old: old, new: try OpenAPILoader.load(path: directory + "/new.yaml"))
        #expect(grown.contains { $0.direction == .backward && $0.level == .err }, "\(grown)")

        let remote = #expect(throws: BatonError.self) {
            _ = try OpenAPILoader.parse(Self.document("  /x: {get: {responses: {\"200\": {$ref: \"https://example.com/r.yaml#/R\"}}}}"), file: "r.yaml")
        }
        #expect(remote?.description == "r.yaml: at /paths/~1x/get/responses/200: $ref 'https://example.com/r.yaml#/R' points at a URL; Baton reads local files only (download it beside the document)")
    }

    /// Slips that change nothing a client may send or receive are repaired with a note.
    @Test func structuralSlipsAreNotesNotErrors() throws {
        let text = """
            openapi: 3.1.0
            info: {title: t}
            paths:
              /a: {get: {responses: {"200": {content: {application/json: {schema: {type: string}}}}}}}
            """
        let loaded = try OpenAPILoader.parse(text, file: "slips.yaml")
        #expect(Set(loaded.notes.map(\.message)) == ["info has no version", "response 200 has no description"])
        #expect(loaded.notes.allSatisfy { $0.level == .info && $0.id == "document-repaired" })
        #expect(OpenAPICompat.compare(old: loaded, new: loaded).allSatisfy { $0.level == .info })
    }
}

extension OpenAPICompatTests {
    /// A file that refers back into the main document, and a cycle that runs through two files,
    /// load (the cycle noted once) and compare with themselves as no change.
    @Test func referencesBackAndCyclesAcrossFiles() throws {
        let directory = NSTemporaryDirectory() + "baton-cycle-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory + "/common", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/other", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.document(
            "  /e: {get: {responses: {\"400\": {description: bad, content: {application/json: {schema: {$ref: \"common/err.yaml#/Error\"}}}}}}}",
            components: "    Code: {type: string, enum: [x, y]}"
        ).write(toFile: directory + "/api.yaml", atomically: true, encoding: .utf8)
        try "Error: {type: object, properties: {code: {$ref: \"../api.yaml#/components/schemas/Code\"}, next: {$ref: \"../other/b.yaml#/B\"}}}\n"
            .write(toFile: directory + "/common/err.yaml", atomically: true, encoding: .utf8)
        try "B: {type: object, properties: {back: {$ref: \"../common/err.yaml#/Error\"}}}\n".write(toFile: directory + "/other/b.yaml", atomically: true, encoding: .utf8)
        let loaded = try OpenAPILoader.load(path: directory + "/api.yaml")
        #expect(loaded.notes.filter { $0.message.contains("is recursive") }.count == 1, "\(loaded.notes)")
        #expect(OpenAPICompat.compare(old: loaded, new: try OpenAPILoader.load(path: directory + "/./common/../api.yaml")).allSatisfy { $0.level == .info })
    }
}
