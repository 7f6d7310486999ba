import OpenAPIKit

/// Compares two releases' OpenAPI documents in both directions: backward (a client built for
/// OLD calling a server running NEW) and forward (a client built for NEW calling a server
/// running OLD). Requests are checked with the client as producer and the server as consumer;
/// responses the other way round.
public enum OpenAPICompat {
    public static func compare(old: LoadedDocument, new: LoadedDocument) -> [Finding] {
        var findings: [Finding] = old.notes + new.notes
        let (pairs, removed, added) = match(operations(old), operations(new))
        func add(_ operation: Operation, _ id: String, _ level: Finding.Level, _ direction: Finding.Direction, _ message: String) {
            findings.append(Finding(id: id, level: level, direction: direction, operation: operation.label, pointer: operation.pointer, message: message))
        }
        for operation in removed {
            switch operation.kind {
            case .call:
                add(operation, "operation-removed", .err, .backward, "a client built for OLD calls \(operation.label), which a server running NEW no longer has (404)")
            case .event:
                add(operation, "operation-removed", .err, .backward, "a client built for OLD waits for \(operation.label), which a server running NEW no longer sends")
                add(operation, "operation-removed", .warn, .forward, "a server still on OLD sends \(operation.label), which a client built for NEW no longer receives (404)")
            }
        }
        for operation in added {
            switch operation.kind {
            case .call:
                add(operation, "operation-added", .warn, .forward, "a client built for NEW may call \(operation.label), which a server still on OLD does not have (404): roll out servers first")
            case .event:
                add(operation, "operation-added", .warn, .backward, "a server running NEW may send \(operation.label), which a client built for OLD does not receive (404): upgrade clients first")
            }
        }
        for (before, after) in pairs { findings += compare(before, after) }
        return findings.sorted { ($0.operation, $0.direction.rawValue, $0.pointer, $0.id, $0.message) < ($1.operation, $1.direction.rawValue, $1.pointer, $1.id, $1.message) }
    }

    struct Operation {
        /// Who calls whom: a client calls the API (`call`); a webhook or callback is the
        /// API's server calling its clients (`event`), so every role is the other way round.
        enum Kind { case call, event }

        var kind: Kind
        /// `GET /items/{id}`, `WEBHOOK newPet POST`, `POST /subscribe CALLBACK done POST {$request.body#/url}`
        var label: String
        /// `GET /items/{}`: the same operation when only a path parameter's name changed.
        var shape: String
        var pointer: String
        var parameters: [String: DereferencedParameter]
        var body: DereferencedRequest?
        var responses: [String: DereferencedResponse]
        /// Alternatives a client may authenticate with; each names schemes that all apply. One
        /// empty alternative: anonymous calls are accepted.
        var security: [Credentials]
        var deprecated: Bool
        /// The document's schemas, for the placeholders OpenAPIKit decoded.
        var schemas: SchemaSource
    }

    /// One security requirement: scheme name → the scheme and the scopes it needs.
    struct Credentials {
        /// Scheme name → what a client must present (`kind`) and the scopes it needs.
        var schemes: [String: (kind: String, scopes: Set<String>)]

        var label: String { schemes.isEmpty ? "no credentials" : schemes.keys.sorted().joined(separator: " + ") }

        /// Whether a client presenting `self` meets `required`: every scheme it names, the same
        /// scheme, with the scopes it asks for.
        func meets(_ required: Credentials) -> Bool {
            required.schemes.allSatisfy { name, need in
                guard let have = schemes[name] else { return false }
                return have.kind == need.kind && need.scopes.isSubset(of: have.scopes)
            }
        }

        /// What a client must present for a scheme, as text: the parts that decide whether a
        /// request gets through (not descriptions, nor the order of an OAuth flow's scopes).
        static func kind(_ scheme: OpenAPI.SecurityScheme) -> String {
            switch scheme.type {
            case .apiKey(let name, let location): "apiKey \(location.rawValue) \(location == .header ? name.lowercased() : name)"
            case .http(let scheme, _): "http \(scheme.lowercased())"
            case .oauth2: "oauth2"
            case .openIdConnect(let url): "openIdConnect \(url.absoluteString)"
            case .mutualTLS: "mutualTLS"
            }
        }
    }

    /// Pairs operations by method and path; one left over on each side with the same shape (a
    /// path parameter renamed, /items/{id} → /items/{itemId}) is the same operation. Sorted, so
    /// the result never depends on the order of the documents' maps.
    static func match(_ old: [Operation], _ new: [Operation]) -> (pairs: [(Operation, Operation)], removed: [Operation], added: [Operation]) {
        var unmatchedNew = Dictionary(new.map { ($0.label, $0) }, uniquingKeysWith: { first, _ in first })
        var pairs: [(Operation, Operation)] = []
        var leftOld: [Operation] = []
        for operation in old.sorted(by: { $0.label < $1.label }) {
            if let same = unmatchedNew.removeValue(forKey: operation.label) { pairs.append((operation, same)) } else { leftOld.append(operation) }
        }
        var removed: [Operation] = []
        for operation in leftOld {
            let candidates = unmatchedNew.values.filter { $0.shape == operation.shape }
            let others = leftOld.filter { $0.shape == operation.shape }
            if candidates.count == 1, others.count == 1, let renamed = candidates.first {
                unmatchedNew[renamed.label] = nil
                pairs.append((operation, renamed))
            } else {
                removed.append(operation)
            }
        }
        return (pairs, removed, unmatchedNew.values.sorted { $0.label < $1.label })
    }

    /// Every operation of a document: paths, webhooks, and the callbacks of both.
    static func operations(_ loaded: LoadedDocument) -> [Operation] {
        let document = loaded.document
        var result: [Operation] = []
        /// `shapePrefix`: the parent operation's shape for a callback, so a callback follows its
        /// operation when a path parameter is renamed.
        func add(_ item: DereferencedPathItem, raw: String, kind: Operation.Kind, label prefix: String, shape shapePrefix: String, pointer base: String) {
            // Path parameters are keyed by their place in the template, so a renamed one is the
            // same parameter and a reordered list changes nothing.
            let template = Self.templateNames(raw)
            let normalized = raw.replacingOccurrences(of: #"\{[^}]*\}"#, with: "{}", options: .regularExpression)
            for endpoint in item.endpoints {
                let method = endpoint.method.rawValue.uppercased()
                var parameters: [String: DereferencedParameter] = [:]
                // Operation parameters override the path item's of the same name and place.
                for parameter in item.parameters + endpoint.operation.parameters {
                        // Header names compare without case, as HTTP does.
                    let name = switch parameter.location {
                    case .path: "path:\(template.firstIndex(of: parameter.name).map(String.init) ?? parameter.name)"
                    case .header: "header:\(parameter.name.lowercased())"
                    default: "\(parameter.location.rawValue):\(parameter.name)"
                    }
                    parameters[name] = parameter
                }
                var responses: [String: DereferencedResponse] = [:]
                for (status, response) in endpoint.operation.responses { responses[status.rawValue] = response }
                // An operation's own security replaces the document's (which is the API's, not
                // its clients' receiving webhooks and callbacks); none at all is anonymous.
                let requirements = (endpoint.operation.security ?? (kind == .call ? document.security : [])).map { requirement in
                    Credentials(schemes: requirement.schemes.mapValues { (Credentials.kind($0.securityScheme), Set($0.requiredScopes)) })
                }
                let label = kind == .call && prefix.isEmpty ? "\(method) \(raw)" : "\(prefix) \(method)\(raw.isEmpty ? "" : " " + raw)"
                let shape = kind == .call && prefix.isEmpty ? "\(method) \(normalized)" : "\(shapePrefix) \(method)\(raw.isEmpty ? "" : " " + raw)"
                let pointer = "\(base)/\(endpoint.method.rawValue.lowercased())"
                result.append(Operation(
                    kind: kind, label: label, shape: shape, pointer: pointer,
                    parameters: parameters, body: endpoint.operation.requestBody, responses: responses,
                    security: requirements.isEmpty ? [Credentials(schemes: [:])] : requirements,
                    deprecated: endpoint.operation.underlyingOperation.deprecated, schemas: loaded.schemas))
                for (name, callbacks) in endpoint.operation.callbacks {
                    for (url, callbackItem) in callbacks {
                        add(callbackItem, raw: url.rawValue, kind: .event, label: "\(label) CALLBACK \(name)", shape: "\(shape) CALLBACK \(name)",
                            pointer: "\(pointer)/callbacks/\(escape(name))/\(escape(url.rawValue))")
                    }
                }
            }
        }
        for (path, item) in document.paths {
            add(item, raw: path.rawValue, kind: .call, label: "", shape: "", pointer: "/paths/\(escape(path.rawValue))")
        }
        for (name, item) in loaded.webhooks {
            add(item, raw: "", kind: .event, label: "WEBHOOK \(name)", shape: "WEBHOOK \(name)", pointer: "/webhooks/\(escape(name))")
        }
        return result
    }

    /// A response's headers by lowercased name, without Content-Type (OpenAPI ignores it there).
    static func headers(_ response: DereferencedResponse) -> [String: DereferencedHeader] {
        var result: [String: DereferencedHeader] = [:]
        for (name, header) in response.headers ?? [:] where name.lowercased() != "content-type" { result[name.lowercased()] = header }
        return result
    }

    /// The names in a path template, in order: /orgs/{org}/teams/{team} → [org, team].
    static func templateNames(_ path: String) -> [String] {
        var names: [String] = []
        var rest = path[...]
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    static func escape(_ token: String) -> String {
        token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    /// The four parties of a rolling upgrade, worded for an operation: for a call the caller is
    /// the client; for a webhook or callback it is the server.
    struct Roles {
        let oldCaller: String, newCaller: String, oldCallee: String, newCallee: String
        /// The pairing of an OLD caller with a NEW callee, and the other one.
        let oldToNew: Finding.Direction, newToOld: Finding.Direction

        init(_ kind: Operation.Kind) {
            let (oldClient, newClient) = ("a client built for OLD", "a client built for NEW")
            let (oldServer, newServer) = ("a server running OLD", "a server running NEW")
            switch kind {
            case .call:
                (oldCaller, newCaller, oldCallee, newCallee) = (oldClient, newClient, oldServer, newServer)
                (oldToNew, newToOld) = (.backward, .forward)
            case .event:
                (oldCaller, newCaller, oldCallee, newCallee) = (oldServer, newServer, oldClient, newClient)
                (oldToNew, newToOld) = (.forward, .backward)
            }
        }
    }

    private static func compare(_ old: Operation, _ new: Operation) -> [Finding] {
        var findings: [Finding] = []
        let label = new.label
        let roles = Roles(new.kind)
        let (oldCaller, newCaller, oldCallee, newCallee) = (roles.oldCaller, roles.newCaller, roles.oldCallee, roles.newCallee)
        let (oldToNew, newToOld) = (roles.oldToNew, roles.newToOld)
        func add(_ id: String, _ level: Finding.Level, _ direction: Finding.Direction, _ pointer: String, _ message: String) {
            findings.append(Finding(id: id, level: level, direction: direction, operation: label, pointer: pointer, message: message))
        }
        /// One pairing (OLD caller with NEW callee, or the other): requests go caller → callee,
        /// responses callee → caller.
        func compareOne(_ location: String, _ pointer: String, request: Bool, _ direction: Finding.Direction, producer: SchemaShape, consumer: SchemaShape) {
            let first = direction == oldToNew
            let caller = first ? oldCaller : newCaller, callee = first ? newCallee : oldCallee
            var check = SchemaCompat(location: location, direction: direction, operation: label, producer: request ? caller : callee, consumer: request ? callee : caller,
                                     consumerIsServer: request, newIsConsumer: request == first)
            check.compare(producer: producer, consumer: consumer, pointer: pointer)
            findings += check.findings
        }
        func compareShapes(_ location: String, _ pointer: String, request: Bool, old o: SchemaShape?, new n: SchemaShape?) {
            guard let o, let n else { return }
            compareOne(location, pointer, request: request, oldToNew, producer: request ? o : n, consumer: request ? n : o)
            compareOne(location, pointer, request: request, newToOld, producer: request ? n : o, consumer: request ? o : n)
        }
        func schemas(_ location: String, _ pointer: String, request: Bool, old oldSchema: JSONSchema?, new newSchema: JSONSchema?) {
            let usage: SchemaShape.Usage = request ? .request : .response
            compareShapes(location, pointer, request: request, old: old.schemas.shape(oldSchema, usage: usage), new: new.schemas.shape(newSchema, usage: usage))
        }

        // Deprecation concerns clients built for OLD: they call the operation, or receive it.
        if !old.deprecated && new.deprecated {
            add("operation-deprecated", .info, .backward, new.pointer, new.kind == .call
                ? "NEW deprecates \(label); a client built for OLD should move off it before a later release removes it"
                : "NEW deprecates \(label); a client built for OLD should stop relying on receiving it before a later release removes it")
        }

        // Security: a client authenticates with one alternative of its release; the other
        // release's server must accept that (a scheme changed under its name counts as unmet).
        for credentials in old.security where !new.security.contains(where: { credentials.meets($0) }) {
            add("security-not-accepted", .err, oldToNew, "\(new.pointer)/security",
                "\(oldCaller) authenticates with \(credentials.label), which \(newCallee) does not accept (it takes \(new.security.map(\.label).joined(separator: " or ")))")
        }
        for credentials in new.security where !old.security.contains(where: { credentials.meets($0) }) {
            add("security-not-accepted", .err, newToOld, "\(new.pointer)/security",
                "\(newCaller) authenticates with \(credentials.label), which \(oldCallee) does not accept (it takes \(old.security.map(\.label).joined(separator: " or ")))")
        }

        // Parameters.
        for (key, before) in old.parameters.sorted(by: { $0.key < $1.key }) {
            let pointer = "\(new.pointer)/parameters/\(escape(before.name))"
            let what = "\(before.location.rawValue) parameter '\(before.name)'"
            guard let after = new.parameters[key] else {
                if before.required {
                    add("parameter-removed", .err, newToOld, pointer, "\(oldCallee) requires \(what), which \(newCaller) no longer sends")
                }
                add("parameter-removed", .warn, oldToNew, pointer, "\(oldCaller) sends \(what), which \(newCallee) ignores")
                continue
            }
            if !before.required && after.required {
                add("parameter-became-required", .err, oldToNew, pointer, "\(newCallee) requires \(what), which \(oldCaller) may omit")
            }
            if before.required && !after.required {
                add("parameter-became-optional", .err, newToOld, pointer, "\(newCaller) may omit \(what), which \(oldCallee) requires")
            }
            if !before.underlyingParameter.deprecated && after.underlyingParameter.deprecated {
                add("parameter-deprecated", .info, .backward, pointer, "NEW deprecates \(what)")
            }
            let (o, n) = (Self.parameterSchema(before, old.schemas), Self.parameterSchema(after, new.schemas))
            if o.mediaType != n.mediaType {
                let (written, read) = (o.mediaType ?? "a plain value", n.mediaType ?? "a plain value")
                add("parameter-media-type-changed", .err, oldToNew, pointer, "\(oldCaller) writes \(what) as \(written), but \(newCallee) reads \(read)")
                add("parameter-media-type-changed", .err, newToOld, pointer, "\(newCaller) writes \(what) as \(read), but \(oldCallee) reads \(written)")
                continue
            }
            // style/explode decide how an array or object is spelled (ids=1,2 or ids=1&ids=2);
            // a single value reads the same in every style.
            if let oldStyle = o.style, let newStyle = n.style, oldStyle != newStyle, Self.structured(o.shape) || Self.structured(n.shape) {
                for (direction, caller, callee, sent, read) in [(oldToNew, oldCaller, newCallee, oldStyle, newStyle), (newToOld, newCaller, oldCallee, newStyle, oldStyle)] {
                    add("parameter-style-changed", .err, direction, pointer, "\(caller) writes \(what) as \(sent), but \(callee) reads it as \(read)")
                }
            }
            // A single value is a one-element array to a callee that now takes several.
            if let single = o.shape, Self.scalar(single), case .value(let array)? = n.shape, array.types == ["array"] {
                add("parameter-became-array", .info, oldToNew, pointer, "\(newCallee) takes several values for \(what); the single value \(oldCaller) sends is a list of one")
                compareOne("parameter", pointer + "/schema/items", request: true, oldToNew, producer: single, consumer: array.items.shape)
                compareOne("parameter", pointer + "/schema", request: true, newToOld, producer: .value(array), consumer: single)
                continue
            }
            compareShapes("parameter", pointer + "/schema", request: true, old: o.shape, new: n.shape)
        }
        for (key, after) in new.parameters.sorted(by: { $0.key < $1.key }) where old.parameters[key] == nil {
            let pointer = "\(new.pointer)/parameters/\(escape(after.name))"
            let what = "\(after.location.rawValue) parameter '\(after.name)'"
            if after.required {
                add("parameter-added-required", .err, oldToNew, pointer, "\(newCallee) requires new \(what), which \(oldCaller) does not send")
            } else {
                add("parameter-added", .info, oldToNew, pointer, "optional \(what) is new")
            }
            add("parameter-added", after.required ? .warn : .info, newToOld, pointer, "\(newCaller) sends \(what), which \(oldCallee) ignores")
        }

        // Request body.
        let bodyPointer = "\(new.pointer)/requestBody"
        switch (old.body, new.body) {
        case (nil, let after?):
            if after.required { add("request-body-added-required", .err, oldToNew, bodyPointer, "\(newCallee) requires a body, which \(oldCaller) does not send") }
            add("request-body-added", .warn, newToOld, bodyPointer, "\(newCaller) sends a body, which \(oldCallee) ignores")
        case (let before?, nil):
            add("request-body-removed", .warn, oldToNew, bodyPointer, "\(oldCaller) sends a body, which \(newCallee) ignores")
            if before.required { add("request-body-removed", .err, newToOld, bodyPointer, "\(oldCallee) requires a body, which \(newCaller) does not send") }
        case (let before?, let after?):
            if !before.required && after.required { add("request-body-became-required", .err, oldToNew, bodyPointer, "\(newCallee) requires the body, which \(oldCaller) may omit") }
            if before.required && !after.required { add("request-body-became-optional", .err, newToOld, bodyPointer, "\(newCaller) may omit the body, which \(oldCallee) requires") }
            for (type, _) in before.content.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where after.content[type] == nil {
                add("request-media-type-removed", .err, oldToNew, "\(bodyPointer)/content/\(escape(type.rawValue))", "\(oldCaller) sends \(type.rawValue), which \(newCallee) no longer accepts (415)")
            }
            for (type, _) in after.content.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where before.content[type] == nil {
                add("request-media-type-added", .warn, newToOld, "\(bodyPointer)/content/\(escape(type.rawValue))", "\(newCaller) may send \(type.rawValue), which \(oldCallee) does not accept (415)")
            }
            for (type, content) in before.content {
                guard let other = after.content[type] else { continue }
                schemas("request-body", "\(bodyPointer)/content/\(escape(type.rawValue))/schema", request: true, old: content.schema?.jsonSchema, new: other.schema?.jsonSchema)
            }
        case (nil, nil): break
        }

        // Responses.
        for (status, after) in new.responses.sorted(by: { $0.key < $1.key }) {
            let pointer = "\(new.pointer)/responses/\(status)"
            guard let before = old.responses[status] else {
                if status != "default" { add("response-status-added", .warn, oldToNew, pointer, "\(newCallee) may answer \(status), which \(oldCaller) does not expect") }
                continue
            }
            for (type, content) in before.content.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                guard let other = after.content[type] else {
                    add("response-media-type-removed", .err, oldToNew, "\(pointer)/content/\(escape(type.rawValue))", "\(oldCaller) expects \(type.rawValue) for \(status), which \(newCallee) no longer sends")
                    continue
                }
                schemas("response-body", "\(pointer)/content/\(escape(type.rawValue))/schema", request: false, old: content.schema?.jsonSchema, new: other.schema?.jsonSchema)
            }
            for (type, _) in after.content.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where before.content[type] == nil {
                add("response-media-type-added", .warn, newToOld, "\(pointer)/content/\(escape(type.rawValue))", "\(newCaller) may expect \(type.rawValue) for \(status), which \(oldCallee) does not send")
            }
            // Headers: a caller may rely on a required one; an optional one it must do without.
            // Names compare as HTTP does, without case; Content-Type is the media type's.
            let oldHeaders = Self.headers(before)
            let newHeaders = Self.headers(after)
            for (name, header) in oldHeaders.sorted(by: { $0.key < $1.key }) {
                let at = "\(pointer)/headers/\(escape(name))"
                guard let other = newHeaders[name] else {
                    if header.required {
                        add("response-header-removed", .err, oldToNew, at, "\(oldCaller) relies on response header '\(name)', which \(newCallee) no longer sends")
                    } else {
                        add("response-header-removed", .info, oldToNew, at, "optional response header '\(name)' is gone; \(oldCaller) already does without it")
                    }
                    continue
                }
                if header.required && !other.required {
                    add("response-header-became-optional", .err, oldToNew, at, "\(oldCaller) relies on response header '\(name)', which \(newCallee) may omit")
                }
                schemas("response-header", at + "/schema", request: false, old: Self.schema(header.schemaOrContent), new: Self.schema(other.schemaOrContent))
            }
            for (name, header) in newHeaders.sorted(by: { $0.key < $1.key }) where header.required && !(oldHeaders[name]?.required ?? false) {
                add("response-header-added-required", .err, newToOld, "\(pointer)/headers/\(escape(name))", "\(newCaller) relies on response header '\(name)', which \(oldCallee) does not promise")
            }
            // Links tell a caller which operation to call next with values from this response.
            for (name, link) in before.links.sorted(by: { $0.key < $1.key }) {
                let at = "\(pointer)/links/\(escape(name))"
                guard let other = after.links[name] else {
                    add("link-removed", .warn, oldToNew, at, "\(oldCaller) may follow link '\(name)', which \(newCallee) no longer documents")
                    continue
                }
                if link.operation != other.operation || link.parameters != other.parameters || link.requestBody != other.requestBody {
                    add("link-changed", .warn, oldToNew, at, "link '\(name)' leads elsewhere or with other values in NEW; \(oldCaller) follows the old one")
                }
            }
            for (name, _) in after.links.sorted(by: { $0.key < $1.key }) where before.links[name] == nil {
                add("link-added", .info, newToOld, "\(pointer)/links/\(escape(name))", "\(newCaller) may follow link '\(name)', which \(oldCallee) does not document")
            }
        }
        for (status, _) in old.responses.sorted(by: { $0.key < $1.key }) where new.responses[status] == nil && status != "default" {
            add("response-status-removed", .warn, newToOld, "\(old.pointer)/responses/\(status)", "\(oldCallee) may still answer \(status), which \(newCaller) does not expect")
        }
        // A caller built for OLD that knows none of the success statuses NEW answers with reads
        // every success as a failure (2XX covers every 2xx; `default` says nothing).
        let oldSuccess = old.responses.keys.filter { $0.hasPrefix("2") }.sorted()
        let newSuccess = new.responses.keys.filter { $0.hasPrefix("2") }.sorted()
        if !oldSuccess.isEmpty, !newSuccess.isEmpty, !oldSuccess.contains("2XX"), Set(oldSuccess).isDisjoint(with: newSuccess) {
            add("success-status-changed", .err, oldToNew, "\(old.pointer)/responses/\(oldSuccess[0])",
                "\(oldCaller) expects \(oldSuccess.joined(separator: " or ")) on success, but \(newCallee) answers \(newSuccess.joined(separator: " or "))")
        }
        return findings
    }

    /// A parameter's schema and how it is written: by style and explode, or as a media type
    /// (`content`).
    static func parameterSchema(_ parameter: DereferencedParameter, _ schemas: SchemaSource) -> (shape: SchemaShape?, style: String?, mediaType: String?) {
        switch parameter.schemaOrContent {
        case .a(let context):
            let style = "style \(context.style.rawValue)\(context.explode ? " exploded" : "")"
            return (schemas.shape(context.schema.jsonSchema, usage: .request), style, nil)
        case .b(let content):
            guard let (type, media) = content.sorted(by: { $0.key.rawValue < $1.key.rawValue }).first else { return (nil, nil, nil) }
            return (schemas.shape(media.schema?.jsonSchema, usage: .request), nil, type.rawValue)
        }
    }

    /// A header's schema, given directly or as the schema of its one media type.
    static func schema(_ schemaOrContent: Either<DereferencedSchemaContext, DereferencedContent.Map>) -> JSONSchema? {
        switch schemaOrContent {
        case .a(let context): context.schema.jsonSchema
        case .b(let content): content.sorted(by: { $0.key.rawValue < $1.key.rawValue }).first?.value.schema?.jsonSchema
        }
    }

    /// A single string, number or boolean (what a parameter carries without a style).
    static func scalar(_ shape: SchemaShape) -> Bool {
        guard case .value(let node) = shape else { return false }
        return !node.types.isEmpty && node.types.isDisjoint(with: ["array", "object"])
    }

    static func structured(_ shape: SchemaShape?) -> Bool {
        switch shape {
        case nil, .any?, .nothing?: false
        case .value(let node)?: !node.types.isDisjoint(with: ["array", "object"])
        case .alternatives?: true
        }
    }
}
