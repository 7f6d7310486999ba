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
    var findings: [Finding] = []
    /// Set in the copies `accepts` uses to ask a yes/no question.
    private var probing = false

    init(location: String, direction: Finding.Direction, operation: String, producer: String, consumer: String, consumerIsServer: Bool) {
        self.location = location
        self.direction = direction
        self.operation = operation
        self.producer = producer
        self.consumer = consumer
        self.consumerIsServer = consumerIsServer
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
        switch (p, c) {
        case (_, .any):
            return
        case (.any, _):
            add("constrained", .warn, pointer, "\(consumer) constrains a value that \(producer) treats as free-form")
        case (.oneOf(let options, let nullable), _), (.anyOf(let options, let nullable), _):
            if nullable && !c.nullable { add("null-not-accepted", .err, pointer, "\(producer) may send null, which \(consumer) rejects") }
            let keyword = { if case .oneOf = p { return "oneOf" } else { return "anyOf" } }()
            for (index, option) in options.enumerated() where !accepts(option, c) {
                add("alternative-not-accepted", .err, "\(pointer)/\(keyword)/\(index)", "\(producer) may send this alternative, which \(consumer) does not accept")
            }
            if case .value = c {} else if case .oneOf(let theirs, _) = c, theirs.count > options.count {
                add("alternative-added", .info, pointer, "\(consumer) accepts more alternatives than \(producer) sends")
            }
        case (.value(let node), .oneOf(let options, let nullable)), (.value(let node), .anyOf(let options, let nullable)):
            if node.nullable && !nullable && !options.contains(where: \.nullable) {
                add("null-not-accepted", .err, pointer, "\(producer) may send null, which \(consumer) rejects")
            }
            let matching = options.indices.filter { accepts(.value(node), options[$0]) }
            if matching.isEmpty {
                add("alternative-not-accepted", .err, pointer, "none of the alternatives \(consumer) accepts matches what \(producer) sends")
            }
            // oneOf accepts a value that matches exactly one alternative; what the producer sends
            // may match two. A warning: the shapes approximate (patterns, `not`), so an overlap
            // is likely, not proven. Not asked inside a probe, where the producer is itself one
            // alternative of a oneOf (the same oneOf on both sides is no change).
            if !probing, case .oneOf = c, matching.count > 1 {
                add("one-of-ambiguous", .warn, pointer,
                    "what \(producer) sends matches alternatives \(matching.map(String.init).joined(separator: " and ")) of the oneOf \(consumer) accepts, which takes a value only when exactly one matches")
            }
        case (.value(let a), .value(let b)):
            compareNodes(a, b, pointer)
        }
    }

    private mutating func compareNodes(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ pointer: String) {
        let here = pointer.isEmpty ? "" : pointer
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
        bounds(p, c, here)

        // Objects.
        if c.types.contains("object") || p.types.contains("object") {
            for name in c.required.sorted() where !p.required.contains(name) {
                add("required-property-missing", .err, "\(here)/required", p.properties[name] == nil
                    ? "\(consumer) requires property '\(name)', which \(producer) does not send"
                    : "\(consumer) requires property '\(name)', which \(producer) may omit")
            }
            for (name, sent) in p.properties.sorted(by: { $0.key < $1.key }) {
                let at = "\(here)/properties/\(name)"
                if let expected = c.properties[name] {
                    compare(producer: sent, consumer: expected, pointer: at)
                } else {
                    switch c.additionalProperties {
                    case .forbidden:
                        add("property-rejected", .err, at, "\(producer) sends property '\(name)', which \(consumer) rejects (additionalProperties: false)")
                    case .schema(let extra):
                        compare(producer: sent, consumer: extra, pointer: at)
                    case .allowed:
                        add("property-ignored", consumerIsServer ? .warn : .info, at, consumerIsServer
                            ? "\(producer) sends property '\(name)', which \(consumer) no longer reads: its value is dropped"
                            : "\(producer) sends property '\(name)', which \(consumer) ignores")
                    }
                }
            }
            for name in c.properties.keys.sorted() where p.properties[name] == nil && !c.required.contains(name) {
                add("property-not-sent", .info, "\(here)/properties/\(name)", "\(consumer) reads optional property '\(name)', which \(producer) never sends")
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
        }
        if let sent = p.items, let expected = c.items {
            compare(producer: sent, consumer: expected, pointer: "\(here)/items")
        }
    }

    /// min/max, lengths and item counts: a consumer stricter than its producer breaks.
    private mutating func bounds(_ p: SchemaShape.Node, _ c: SchemaShape.Node, _ pointer: String) {
        /// `stricter(a, b)`: bound a admits less than bound b (a lower bound above, an upper below).
        func check<T: Comparable & CustomStringConvertible>(_ name: String, _ sent: T?, _ accepted: T?, stricter: (T, T) -> Bool) {
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
                add("bound-loosened", .info, pointer, "\(consumer) allows \(name) \(accepted), \(accepted < sent ? "below" : "above") the \(sent) \(producer) keeps to")
            }
        }
        check("minimum", p.minimum, c.minimum, stricter: >)
        check("maximum", p.maximum, c.maximum, stricter: <)
        check("minLength", p.minLength, c.minLength, stricter: >)
        check("maxLength", p.maxLength, c.maxLength, stricter: <)
        check("minItems", p.minItems, c.minItems, stricter: >)
        check("maxItems", p.maxItems, c.maxItems, stricter: <)
    }
}
