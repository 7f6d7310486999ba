import Foundation

/// Whether a consumer accepts everything a producer may send, schema against schema. Every
/// difference becomes a finding worded for this pairing ("a server running NEW may send …,
/// which a client built for OLD rejects").
struct SchemaCompat {
    /// Id prefix: request-body, response-body, parameter, response-header, message.
    let location: String
    let direction: Finding.Direction
    let operation: String
    let producer: String
    let consumer: String
    /// Whether the consumer is a server reading a request (it ignores unknown fields, but a
    /// field it no longer reads may be data lost).
    let consumerIsServer: Bool
    /// Whether the consumer is the NEW release (what NEW deprecates is noted once, backward).
    let newIsConsumer: Bool
    var findings: [Finding] = []
    /// Set in the copies `accepts` uses to ask a yes/no question.
    private var probing = false
    /// Schemas compared so far, shared with the probes: `$ref`s that branch to the same schema
    /// again and again expand exponentially, so a comparison stops at a bound and says so.
    private let budget = Budget()

    final class Budget {
        static let comparisons = 100_000
        var left = comparisons
        var reported = false
    }

    init(location: String, direction: Finding.Direction, operation: String, producer: String, consumer: String, consumerIsServer: Bool, newIsConsumer: Bool) {
        self.location = location
        self.direction = direction
        self.operation = operation
        self.producer = producer
        self.consumer = consumer
        self.consumerIsServer = consumerIsServer
        self.newIsConsumer = newIsConsumer
    }

    mutating func add(_ rule: String, _ level: Finding.Level, _ pointer: String, _ message: String) {
        findings.append(Finding(id: "\(location).\(rule)", level: level, direction: direction, operation: operation, pointer: pointer, message: message))
    }

    /// Errors only, to ask whether one alternative accepts another.
    private func accepts(_ producer: SchemaShape, _ consumer: SchemaShape) -> Bool {
        var probe = self
        probe.findings = []
        probe.probing = true
        probe.compare(producer: producer, consumer: consumer, pointer: "")
        return !probe.findings.contains { $0.level == .err }
    }

    mutating func compare(producer p: SchemaShape, consumer c: SchemaShape, pointer: String) {
        budget.left -= 1
        guard budget.left > 0 else {
            if !budget.reported, !probing {
                budget.reported = true
                add("comparison-incomplete", .warn, pointer,
                    "the schemas branch into more than \(Budget.comparisons) comparisons (references reused at every level); the rest is not compared")
            }
            return
        }
        switch (p, c) {
        case (_, .any), (.nothing, _):
            return
        case (_, .nothing):
            add("type-changed", .err, pointer, "\(consumer) accepts no value here, but \(producer) may send one")
        case (.any, _):
            add("constrained", .warn, pointer, "\(consumer) constrains a value that \(producer) treats as free-form")
        case (.alternatives(let sent), _):
            if sent.nullable && !c.nullable { add("null-not-accepted", .err, pointer, "\(producer) may send null, which \(consumer) rejects") }
            for (index, option) in sent.options.enumerated() where !accepts(option, c) {
                add("alternative-not-accepted", .err, "\(pointer)/\(sent.keyword)/\(index)", "\(producer) may send this alternative, which \(consumer) does not accept")
            }
            guard case .alternatives(let accepted) = c else { return }
            if accepted.options.count > sent.options.count {
                add("alternative-added", .info, pointer, "\(consumer) accepts more alternatives than \(producer) sends")
            }
            discriminators(sent.discriminator, accepted.discriminator, pointer)
        case (.value(var node), .alternatives(let accepted)) where node.types.count > 1:
            // A value of several types may be taken by a different alternative for each type.
            let types = node.types.sorted()
            for type in types {
                node.types = [type]
                compare(producer: .value(node), consumer: c, pointer: pointer)
            }
        case (.value(let node), .alternatives(let accepted)):
            if node.nullable && !accepted.nullable && !accepted.options.contains(where: \.nullable) {
                add("null-not-accepted", .err, pointer, "\(producer) may send null, which \(consumer) rejects")
            }
            let matching = accepted.options.indices.filter { accepts(.value(node), accepted.options[$0]) }
            if matching.isEmpty {
                add("alternative-not-accepted", .err, pointer, "none of the alternatives \(consumer) accepts matches what \(producer) sends")
            }
            // oneOf accepts a value that matches exactly one alternative; what the producer sends
            // may match two. A warning: the shapes approximate (patterns, `not`), so an overlap
            // is likely, not proven. Not asked inside a probe, where the producer is itself one
            // alternative of a oneOf (the same oneOf on both sides is no change).
            if !probing, accepted.exclusive, matching.count > 1 {
                add("one-of-ambiguous", .warn, pointer,
                    "what \(producer) sends matches alternatives \(matching.map(String.init).joined(separator: " and ")) of the oneOf \(consumer) accepts, which takes a value only when exactly one matches")
            }
        case (.value(let a), .value(let b)):
            compareNodes(a, b, pointer)
        }
    }

    /// The discriminator names the property whose value picks the alternative: the consumer
    /// must look at the same property and know every value the producer uses.
    private mutating func discriminators(_ sent: SchemaShape.Discriminator?, _ accepted: SchemaShape.Discriminator?, _ pointer: String) {
        let at = "\(pointer)/discriminator"
        switch (sent, accepted) {
        case (nil, nil): return
        case (let sent?, let accepted?):
            if sent.propertyName != accepted.propertyName {
                return add("discriminator-changed", .err, at, "\(consumer) picks the alternative by '\(accepted.propertyName)', \(producer) by '\(sent.propertyName)'")
            }
            guard !accepted.mapping.isEmpty else { return }
            for (value, target) in sent.mapping.sorted(by: { $0.key < $1.key }) {
                if let theirs = accepted.mapping[value] {
                    if theirs != target { add("discriminator-changed", .warn, "\(at)/mapping/\(OpenAPICompat.escape(value))", "'\(value)' selects \(target) for \(producer) but \(theirs) for \(consumer)") }
                } else {
                    add("discriminator-mapping-removed", .err, "\(at)/mapping/\(OpenAPICompat.escape(value))", "\(producer) may send '\(value)', which \(consumer)'s discriminator does not map")
                }
            }
        default:
            add("discriminator-changed", .warn, at, accepted == nil
                ? "\(consumer) no longer picks the alternative by a discriminator; overlapping alternatives may now be ambiguous"
                : "\(consumer) picks the alternative by '\(accepted!.propertyName)', which \(producer) does not promise to send")
        }
    }

    private mutating func compareNodes(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ pointer: String) {
        let here = pointer
        // Types, with integer → number a widening.
        if !c.types.isEmpty {
            let missing = p.types.isEmpty ? ["any type"] : p.types.filter { !c.types.contains($0) && !($0 == "integer" && c.types.contains("number")) && $0 != "null" }.sorted()
            if !missing.isEmpty {
                add("type-changed", .err, here, "\(producer) sends \(missing.joined(separator: "/")), but \(consumer) expects \(c.types.sorted().joined(separator: "/"))")
                return
            }
            if c.types.count > p.types.count || (p.types.contains("integer") && c.types.contains("number") && !c.types.contains("integer")) {
                add("type-widened", .info, here, "\(consumer) accepts \(c.types.sorted().joined(separator: "/")), more than the \(p.types.sorted().joined(separator: "/")) \(producer) sends")
            }
        }
        if p.nullable && !c.nullable { add("null-not-accepted", .err, here, "\(producer) may send null, which \(consumer) rejects") }
        if !p.nullable && c.nullable { add("null-accepted", .info, here, "\(consumer) also accepts null") }

        // Enums.
        if let allowed = c.enumValues {
            if let sent = p.enumValues {
                let unknown = sent.filter { !allowed.contains($0) }
                for value in unknown {
                    add("enum-value-not-accepted", .err, here, "\(producer) may send \(value), which \(consumer) does not know")
                }
                if allowed.count > sent.count && unknown.isEmpty {
                    add("enum-value-added", .info, here, "\(consumer) accepts values \(producer) never sends: \(allowed.filter { !sent.contains($0) }.joined(separator: ", "))")
                }
            } else {
                add("enum-added", .err, here, "\(consumer) accepts only \(allowed.joined(separator: ", ")), but \(producer) may send any value")
            }
        } else if p.enumValues != nil {
            add("enum-removed", .info, here, "\(consumer) accepts any value, not only the listed ones")
        }

        if p.defaultValue != c.defaultValue, p.defaultValue != nil || c.defaultValue != nil {
            add("default-changed", .warn, here, "the default is \(c.defaultValue ?? "none") for \(consumer) but \(p.defaultValue ?? "none") for \(producer): an omitted value means different things")
        }
        if p.format != c.format, let format = c.format {
            add("format-changed", .warn, here, "\(consumer) expects format \(format), \(producer) sends \(p.format ?? "no particular format")")
        }
        // A pattern where there was none rejects some value the producer may send; whether one
        // pattern admits everything another does is not decided here, so a change is a warning.
        // A format is an annotation in JSON Schema 2020-12 (validators need not check it): a warning.
        if p.pattern != c.pattern, let pattern = c.pattern {
            if let before = p.pattern {
                add("pattern-changed", .warn, here, "\(consumer) checks pattern \(pattern), which \(producer) does not promise (\(before))")
            } else if p.enumValues != nil {
                add("pattern-changed", .warn, here, "\(consumer) checks pattern \(pattern) on values \(producer) sends from a fixed list")
            } else {
                add("pattern-added", .err, here, "\(consumer) checks pattern \(pattern), so some values \(producer) may send are rejected")
            }
        }
        if c.contentMediaType != nil && c.contentMediaType != p.contentMediaType || c.contentEncoding != nil && c.contentEncoding != p.contentEncoding {
            add("content-changed", .warn, here, "\(consumer) expects the string to carry \([c.contentMediaType, c.contentEncoding].compactMap { $0 }.joined(separator: " in ")), \(producer) \([p.contentMediaType, p.contentEncoding].compactMap { $0 }.joined(separator: " in ").replacingOccurrences(of: #"^$"#, with: "says nothing of it", options: .regularExpression))")
        }
        if let expected = c.contentSchema {
            if let sent = p.contentSchema { compare(producer: sent, consumer: expected, pointer: "\(here)/contentSchema") }
            else { add("content-changed", .warn, "\(here)/contentSchema", "\(consumer) expects the string's content to match a schema \(producer) does not promise") }
        }
        if let multiple = c.multipleOf {
            if let sent = p.multipleOf, Self.divides(multiple, sent) {
                if sent != multiple { add("multiple-of-changed", .info, here, "\(consumer) takes multiples of \(multiple); \(producer) sends multiples of \(sent)") }
            } else {
                add("multiple-of-changed", .err, here, "\(consumer) takes only multiples of \(multiple), but \(producer) may send \(p.multipleOf.map { "multiples of \($0)" } ?? "any number")")
            }
        } else if let sent = p.multipleOf {
            add("multiple-of-changed", .info, here, "\(consumer) takes any number, not only multiples of \(sent)")
        }
        bounds(p, c, here)
        if direction == .backward, (newIsConsumer ? c : p).deprecated, !(newIsConsumer ? p : c).deprecated {
            add("property-deprecated", .info, here, "NEW deprecates this value; it will go in a later release")
        }

        if c.types.contains("array") || p.types.contains("array") { compareArrays(p, c, here) }
        if c.types.contains("object") || p.types.contains("object") { compareObjects(p, c, here) }
        compareApplicators(p, c, here)
    }

    private mutating func compareArrays(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ here: String) {
        if c.uniqueItems && !p.uniqueItems {
            add("unique-items-added", .err, here, "\(consumer) rejects an array with repeated items, which \(producer) may send")
        }
        // Position by position: the producer's item at i is its prefixItems[i], else its items.
        let positions = max(c.prefixItems.count, p.prefixItems.count)
        for index in 0..<positions {
            let sent = index < p.prefixItems.count ? p.prefixItems[index] : p.items.shape
            if index >= p.prefixItems.count, p.items == .forbidden { break }
            if let limit = p.maxItems, index >= limit { break }
            let expected = index < c.prefixItems.count ? c.prefixItems[index] : c.items.shape
            if expected == .nothing {
                add("items-rejected", .err, "\(here)/prefixItems/\(index)", "\(producer) may send an item at position \(index), which \(consumer) rejects (no items beyond its prefixItems)")
                break
            }
            compare(producer: sent, consumer: expected, pointer: "\(here)/\(index < c.prefixItems.count ? "prefixItems/\(index)" : "items")")
        }
        // The rest: items after both prefixes.
        if p.items != .forbidden, (p.maxItems ?? Int.max) > positions {
            if c.items == .forbidden {
                add("items-rejected", .err, "\(here)/items", "\(producer) may send more than \(positions) item\(positions == 1 ? "" : "s"), which \(consumer) rejects")
            } else {
                compare(producer: p.items.shape, consumer: c.items.shape, pointer: "\(here)/items")
            }
        }
        if let expected = c.contains, (c.minContains ?? 1) > 0 {
            let promised = p.contains.map { (p.minContains ?? 1) >= (c.minContains ?? 1) && accepts($0, expected) } ?? false
            if !promised {
                add("contains-added", .err, "\(here)/contains", "\(consumer) requires \(c.minContains ?? 1) or more items matching its contains, which \(producer) does not promise")
            }
        }
    }

    private mutating func compareObjects(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ here: String) {
        for name in c.required.sorted() where !p.required.contains(name) {
            add("required-property-missing", .err, "\(here)/required", p.properties[name] == nil
                ? "\(consumer) requires property '\(name)', which \(producer) does not send"
                : "\(consumer) requires property '\(name)', which \(producer) may omit")
        }
        for (name, sent) in p.properties.sorted(by: { $0.key < $1.key }) {
            let at = "\(here)/properties/\(OpenAPICompat.escape(name))"
            if let expected = c.properties[name] {
                compare(producer: sent, consumer: expected, pointer: at)
                continue
            }
            // A property matching a pattern is checked by that pattern's schema, not as extra.
            let patterns = c.patternProperties.keys.sorted().filter { Self.matches(name, $0) ?? true }
            for pattern in patterns { compare(producer: sent, consumer: c.patternProperties[pattern]!, pointer: at) }
            guard patterns.isEmpty else { continue }
            switch c.additionalProperties {
            case .forbidden:
                add("property-rejected", .err, at, "\(producer) sends property '\(name)', which \(consumer) rejects (no properties beyond those it lists)")
            case .schema(let extra):
                compare(producer: sent, consumer: extra, pointer: at)
            case .allowed:
                add("property-ignored", consumerIsServer ? .warn : .info, at, consumerIsServer
                    ? "\(producer) sends property '\(name)', which \(consumer) no longer reads: its value is dropped"
                    : "\(producer) sends property '\(name)', which \(consumer) ignores")
            }
        }
        for name in c.properties.keys.sorted() where p.properties[name] == nil && !c.required.contains(name) {
            add("property-not-sent", .info, "\(here)/properties/\(OpenAPICompat.escape(name))", "\(consumer) reads optional property '\(name)', which \(producer) never sends")
        }
        if case .schema(let extra) = p.additionalProperties {
            switch c.additionalProperties {
            case .forbidden: add("property-rejected", .err, "\(here)/additionalProperties", "\(producer) sends extra properties, which \(consumer) rejects")
            case .schema(let theirs): compare(producer: extra, consumer: theirs, pointer: "\(here)/additionalProperties")
            case .allowed: break
            }
        } else if p.additionalProperties == .allowed, c.additionalProperties == .forbidden, !p.types.isEmpty {
            add("additional-properties-forbidden", .warn, "\(here)/additionalProperties", "\(consumer) rejects properties it does not list, which \(producer) does not rule out")
        }
        let mayAddProperties = p.additionalProperties != .forbidden
        // What the producer sends under a pattern the consumer does not list: the consumer's
        // patterns (any might match the same names) or its additionalProperties decide.
        for (pattern, sent) in p.patternProperties.sorted(by: { $0.key < $1.key }) where c.patternProperties[pattern] == nil {
            let at = "\(here)/patternProperties/\(OpenAPICompat.escape(pattern))"
            if !c.patternProperties.isEmpty {
                for (_, expected) in c.patternProperties.sorted(by: { $0.key < $1.key }) { compare(producer: sent, consumer: expected, pointer: at) }
            } else if c.additionalProperties == .forbidden {
                add("property-rejected", .err, at, "\(producer) sends properties named like '\(pattern)', which \(consumer) rejects")
            } else if case .schema(let extra) = c.additionalProperties {
                compare(producer: sent, consumer: extra, pointer: at)
            }
        }
        for (pattern, expected) in c.patternProperties.sorted(by: { $0.key < $1.key }) {
            let at = "\(here)/patternProperties/\(OpenAPICompat.escape(pattern))"
            if let sent = p.patternProperties[pattern] {
                compare(producer: sent, consumer: expected, pointer: at)
            } else if mayAddProperties, expected != .any {
                add("pattern-property-added", .warn, at, "\(consumer) checks properties named like '\(pattern)', which \(producer) does not constrain")
            }
        }
        if let names = c.propertyNames {
            for name in p.properties.keys.sorted() where !Self.admits(name, names) {
                add("property-names-restricted", .err, "\(here)/propertyNames", "\(consumer) rejects the property name '\(name)', which \(producer) sends")
            }
            if let sent = p.propertyNames {
                compare(producer: sent, consumer: names, pointer: "\(here)/propertyNames")
            } else if mayAddProperties {
                add("property-names-restricted", .warn, "\(here)/propertyNames", "\(consumer) restricts property names, which \(producer) does not")
            }
        }
        for (name, needs) in c.dependentRequired.sorted(by: { $0.key < $1.key }) {
            guard p.properties[name] != nil || mayAddProperties else { continue }
            let missing = needs.subtracting(p.dependentRequired[name] ?? []).subtracting(p.required)
            if !missing.isEmpty {
                add("dependent-required-added", .err, "\(here)/dependentRequired/\(OpenAPICompat.escape(name))",
                    "with '\(name)' present \(consumer) also requires \(missing.sorted().map { "'\($0)'" }.joined(separator: ", ")), which \(producer) may omit")
            }
        }
        for (name, expected) in c.dependentSchemas.sorted(by: { $0.key < $1.key }) {
            guard p.properties[name] != nil || mayAddProperties else { continue }
            let at = "\(here)/dependentSchemas/\(OpenAPICompat.escape(name))"
            if let sent = p.dependentSchemas[name] {
                compare(producer: sent, consumer: expected, pointer: at)
            } else if !accepts(.value(p), expected) {
                add("dependent-schema-added", .err, at, "with '\(name)' present \(consumer) checks the object against a schema \(producer) does not keep to")
            }
        }
    }

    /// `not` and `if`/`then`/`else`: what the consumer adds must hold for everything the
    /// producer sends. A condition the producer never meets asks nothing of it.
    private mutating func compareApplicators(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ here: String) {
        for (index, rejected) in c.not.enumerated() where !p.not.contains(rejected) && !Self.excludes(p, rejected) {
            if accepts(.value(p), rejected) {
                add("not-added", .err, "\(here)/not", "\(consumer) rejects every value \(producer) sends (not)")
            } else {
                add("not-added", .warn, "\(here)/not\(c.not.count > 1 ? "/\(index)" : "")", "\(consumer) rejects values matching its 'not', some of which \(producer) may send")
            }
        }
        for conditional in c.conditionals where !p.conditionals.contains(conditional) {
            let same = p.conditionals.first { $0.condition == conditional.condition }
            let always = accepts(.value(p), conditional.condition)
            let never = Self.excludes(p, conditional.condition)
            var broken: [String] = []
            if !never, !accepts(SchemaSource.merged(.value(p), same?.then), conditional.then) { broken.append("then") }
            if !always, !accepts(SchemaSource.merged(.value(p), same?.otherwise), conditional.otherwise) { broken.append("else") }
            for branch in broken {
                add("conditional-added", .err, "\(here)/\(branch)", "\(consumer) checks values \(branch == "then" ? "matching" : "not matching") its 'if' against a schema \(producer) does not keep to")
            }
        }
    }

    /// Whether no value the producer sends can match `shape` (types, enums, or a required
    /// property's value that cannot match).
    static func excludes(_ p: SchemaShape.Node, _ shape: SchemaShape) -> Bool {
        switch shape {
        case .any: return false
        case .nothing: return true
        case .alternatives(let alternatives): return !(alternatives.nullable && p.nullable) && alternatives.options.allSatisfy { excludes(p, $0) }
        case .value(let node):
            if !node.types.isEmpty, !p.types.isEmpty, !(p.nullable && node.nullable) {
                let widened = node.types.contains("number") ? node.types.union(["integer"]) : node.types
                if p.types.isDisjoint(with: widened) { return true }
            }
            if let values = node.enumValues, let sent = p.enumValues, Set(values).isDisjoint(with: sent) { return true }
            for (name, expected) in node.properties where p.required.contains(name) {
                if case .value(let property)? = p.properties[name], excludes(property, expected) { return true }
            }
            return false
        }
    }

    /// Whether a property name passes a `propertyNames` schema.
    static func admits(_ name: String, _ shape: SchemaShape) -> Bool {
        guard case .value(let node) = shape else { return shape != .nothing }
        if let values = node.enumValues, !values.contains("\"\(name)\"") { return false }
        if let limit = node.maxLength, name.count > limit { return false }
        if let limit = node.minLength, name.count < limit { return false }
        if let pattern = node.pattern, matches(name, pattern) == false { return false }
        return true
    }

    /// Whether `large` is a whole multiple of `small` (within floating-point error: 0.3 is a
    /// multiple of 0.1).
    static func divides(_ small: Double, _ large: Double) -> Bool {
        guard small != 0 else { return false }
        let quotient = large / small
        return abs(quotient - quotient.rounded()) < 1e-9 * max(1, abs(quotient))
    }

    /// Whether a property name matches a document's pattern; nil when that cannot be told
    /// safely: a pattern ICU cannot read, a long name, or a quantified group holding another
    /// quantifier or an alternation (`(a|a)*`, `(a+)+`), which can backtrack for ever.
    /// ECMA-262 patterns are unanchored, as NSRegularExpression's search is.
    static func matches(_ text: String, _ pattern: String) -> Bool? {
        guard text.utf8.count <= 256, pattern.utf8.count <= 1024, pattern.firstMatch(of: nestedQuantifier) == nil,
              let expression = try? NSRegularExpression(pattern: pattern) else { return nil }
        return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    nonisolated(unsafe) private static let nestedQuantifier = #/\((?:[^()\\]|\\.)*[*+|}](?:[^()\\]|\\.)*\)\s*[*+{]/#

    /// min/max, lengths and counts: a consumer stricter than its producer breaks.
    private mutating func bounds(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ pointer: String) {
        /// `stricter(a, b)`: bound a admits less than bound b (a lower bound above, an upper below).
        func check<T: Equatable & CustomStringConvertible>(_ name: String, _ sent: T?, _ accepted: T?, stricter: (T, T) -> Bool) {
            guard let accepted else {
                if let sent { add("bound-loosened", .info, pointer, "\(consumer) has no \(name), \(producer) keeps \(sent)") }
                return
            }
            guard let sent else {
                return add("bound-tightened", .err, pointer, "\(consumer) requires \(name) \(accepted), but \(producer) allows no \(name)")
            }
            if stricter(accepted, sent) {
                add("bound-tightened", .err, pointer, "\(consumer) requires \(name) \(accepted), but \(producer) allows \(sent)")
            } else if stricter(sent, accepted) {
                add("bound-loosened", .info, pointer, "\(consumer) allows \(name) \(accepted), beyond the \(sent) \(producer) keeps to")
            }
        }
        check("minimum", p.minimum, c.minimum) { a, b in a.value > b.value || (a.value == b.value && a.exclusive && !b.exclusive) }
        check("maximum", p.maximum, c.maximum) { a, b in a.value < b.value || (a.value == b.value && a.exclusive && !b.exclusive) }
        check("minLength", p.minLength, c.minLength, stricter: >)
        check("maxLength", p.maxLength, c.maxLength, stricter: <)
        check("minItems", p.minItems, c.minItems, stricter: >)
        check("maxItems", p.maxItems, c.maxItems, stricter: <)
        check("minProperties", p.minProperties, c.minProperties, stricter: >)
        check("maxProperties", p.maxProperties, c.maxProperties, stricter: <)
        if p.contains == c.contains { check("maxContains", p.maxContains, c.maxContains, stricter: <) }
    }
}
