import OpenAPIKit

/// Compares two releases' OpenAPI documents in both directions: backward (a client built for
/// OLD calling a server running NEW) and forward (a client built for NEW calling a server
/// running OLD). Requests are checked with the client as producer and the server as consumer;
/// responses the other way round.
public enum OpenAPICompat {
    public static func compare(old: LoadedDocument, new: LoadedDocument) -> [Finding] {
        let (pairs, removed, added) = match(operations(old.document), operations(new.document))
        var findings: [Finding] = old.notes + new.notes
        for operation in removed {
            findings.append(Finding(
                id: "operation-removed", level: .err, direction: .backward, operation: operation.label, pointer: operation.pointer,
                message: "a client built for OLD calls \(operation.label), which a server running NEW no longer has (404)"))
        }
        for operation in added {
            findings.append(Finding(
                id: "operation-added", level: .warn, direction: .forward, operation: operation.label, pointer: operation.pointer,
                message: "a client built for NEW may call \(operation.label), which a server still on OLD does not have (404): roll out servers first"))
        }
        for (before, after) in pairs { findings += compare(before, after) }
        return findings.sorted { ($0.operation, $0.direction.rawValue, $0.pointer, $0.id) < ($1.operation, $1.direction.rawValue, $1.pointer, $1.id) }
    }

    struct Operation {
        /// `GET /items/{id}`
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

    static func operations(_ document: DereferencedDocument) -> [Operation] {
        var result: [Operation] = []
        for (path, item) in document.paths {
            let raw = path.rawValue
            let normalized = raw.replacingOccurrences(of: #"\{[^}]*\}"#, with: "{}", options: .regularExpression)
            // Path parameters are keyed by their place in the template, so a renamed one is the
            // same parameter and a reordered list changes nothing.
            let template = Self.templateNames(raw)
            for endpoint in item.endpoints {
                let method = endpoint.method.rawValue.uppercased()
                var parameters: [String: DereferencedParameter] = [:]
                // Operation parameters override the path item's of the same name and place.
                for parameter in item.parameters + endpoint.operation.parameters {
                    let name = parameter.location == .path
                        ? "path:\(template.firstIndex(of: parameter.name).map(String.init) ?? parameter.name)"
                        : "\(parameter.location.rawValue):\(parameter.name)"
                    parameters[name] = parameter
                }
                var responses: [String: DereferencedResponse] = [:]
                for (status, response) in endpoint.operation.responses { responses[status.rawValue] = response }
                // An operation's own security replaces the document's; none at all is anonymous.
                let requirements = (endpoint.operation.security ?? document.security).map { requirement in
                    Credentials(schemes: requirement.schemes.mapValues { (Credentials.kind($0.securityScheme), Set($0.requiredScopes)) })
                }
                result.append(Operation(
                    label: "\(method) \(raw)", shape: "\(method) \(normalized)", pointer: "/paths/\(escape(raw))/\(endpoint.method.rawValue.lowercased())",
                    parameters: parameters, body: endpoint.operation.requestBody, responses: responses,
                    security: requirements.isEmpty ? [Credentials(schemes: [:])] : requirements))
            }
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

    enum Side {
        static let oldClient = "a client built for OLD", newClient = "a client built for NEW"
        static let oldServer = "a server running OLD", newServer = "a server running NEW"
    }

    private static func compare(_ old: Operation, _ new: Operation) -> [Finding] {
        var findings: [Finding] = []
        let label = new.label
        func add(_ id: String, _ level: Finding.Level, _ direction: Finding.Direction, _ pointer: String, _ message: String) {
            findings.append(Finding(id: id, level: level, direction: direction, operation: label, pointer: pointer, message: message))
        }
        func schemas(_ location: String, _ pointer: String, request: Bool, old oldSchema: JSONSchema?, new newSchema: JSONSchema?) {
            guard let oldSchema, let newSchema else { return }
            let usage: SchemaShape.Usage = request ? .request : .response
            let (o, n) = (SchemaShape(oldSchema, usage: usage), SchemaShape(newSchema, usage: usage))
            // backward: requests old client → new server, responses new server → old client.
            var backward = SchemaCompat(location: location, direction: .backward, operation: label,
                                        producer: request ? Side.oldClient : Side.newServer, consumer: request ? Side.newServer : Side.oldClient, consumerIsServer: request)
            backward.compare(producer: request ? o : n, consumer: request ? n : o, pointer: pointer)
            var forward = SchemaCompat(location: location, direction: .forward, operation: label,
                                       producer: request ? Side.newClient : Side.oldServer, consumer: request ? Side.oldServer : Side.newClient, consumerIsServer: request)
            forward.compare(producer: request ? n : o, consumer: request ? o : n, pointer: pointer)
            findings += backward.findings + forward.findings
        }

        // Security: a client authenticates with one alternative of its release; the other
        // release's server must accept that (a scheme changed under its name counts as unmet).
        for credentials in old.security where !new.security.contains(where: { credentials.meets($0) }) {
            add("security-not-accepted", .err, .backward, "\(new.pointer)/security",
                "a client built for OLD authenticates with \(credentials.label), which a server running NEW does not accept (it takes \(new.security.map(\.label).joined(separator: " or ")))")
        }
        for credentials in new.security where !old.security.contains(where: { credentials.meets($0) }) {
            add("security-not-accepted", .err, .forward, "\(new.pointer)/security",
                "a client built for NEW authenticates with \(credentials.label), which a server running OLD does not accept (it takes \(old.security.map(\.label).joined(separator: " or ")))")
        }

        // Parameters.
        for (key, before) in old.parameters.sorted(by: { $0.key < $1.key }) {
            let pointer = "\(new.pointer)/parameters/\(before.name)"
            guard let after = new.parameters[key] else {
                if before.required {
                    add("parameter-removed", .err, .forward, pointer, "a server running OLD requires \(before.location.rawValue) parameter '\(before.name)', which a client built for NEW no longer sends")
                }
                add("parameter-removed", .warn, .backward, pointer, "a client built for OLD sends \(before.location.rawValue) parameter '\(before.name)', which a server running NEW ignores")
                continue
            }
            if !before.required && after.required {
                add("parameter-became-required", .err, .backward, pointer, "a server running NEW requires \(after.location.rawValue) parameter '\(after.name)', which a client built for OLD may omit")
            }
            if before.required && !after.required {
                add("parameter-became-optional", .err, .forward, pointer, "a client built for NEW may omit \(after.location.rawValue) parameter '\(after.name)', which a server running OLD requires")
            }
            schemas("parameter", pointer + "/schema", request: true, old: before.schemaOrContent.a?.schema.jsonSchema, new: after.schemaOrContent.a?.schema.jsonSchema)
        }
        for (key, after) in new.parameters.sorted(by: { $0.key < $1.key }) where old.parameters[key] == nil {
            let pointer = "\(new.pointer)/parameters/\(after.name)"
            if after.required {
                add("parameter-added-required", .err, .backward, pointer, "a server running NEW requires new \(after.location.rawValue) parameter '\(after.name)', which a client built for OLD does not send")
            } else {
                add("parameter-added", .info, .backward, pointer, "optional \(after.location.rawValue) parameter '\(after.name)' is new")
            }
            add("parameter-added", after.required ? .warn : .info, .forward, pointer, "a client built for NEW sends \(after.location.rawValue) parameter '\(after.name)', which a server running OLD ignores")
        }

        // Request body.
        let bodyPointer = "\(new.pointer)/requestBody"
        switch (old.body, new.body) {
        case (nil, let after?):
            if after.required { add("request-body-added-required", .err, .backward, bodyPointer, "a server running NEW requires a body, which a client built for OLD does not send") }
            add("request-body-added", .warn, .forward, bodyPointer, "a client built for NEW sends a body, which a server running OLD ignores")
        case (let before?, nil):
            add("request-body-removed", .warn, .backward, bodyPointer, "a client built for OLD sends a body, which a server running NEW ignores")
            if before.required { add("request-body-removed", .err, .forward, bodyPointer, "a server running OLD requires a body, which a client built for NEW does not send") }
        case (let before?, let after?):
            if !before.required && after.required { add("request-body-became-required", .err, .backward, bodyPointer, "a server running NEW requires the body, which a client built for OLD may omit") }
            if before.required && !after.required { add("request-body-became-optional", .err, .forward, bodyPointer, "a client built for NEW may omit the body, which a server running OLD requires") }
            for (type, content) in before.content where after.content[type] == nil {
                add("request-media-type-removed", .err, .backward, "\(bodyPointer)/content/\(escape(type.rawValue))", "a client built for OLD sends \(type.rawValue), which a server running NEW no longer accepts (415)")
            }
            for (type, _) in after.content where before.content[type] == nil {
                add("request-media-type-added", .warn, .forward, "\(bodyPointer)/content/\(escape(type.rawValue))", "a client built for NEW may send \(type.rawValue), which a server running OLD does not accept (415)")
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
                if status != "default" { add("response-status-added", .warn, .backward, pointer, "a server running NEW may answer \(status), which a client built for OLD does not expect") }
                continue
            }
            for (type, content) in before.content {
                guard let other = after.content[type] else {
                    add("response-media-type-removed", .err, .backward, "\(pointer)/content/\(escape(type.rawValue))", "a client built for OLD expects \(type.rawValue) for \(status), which a server running NEW no longer sends")
                    continue
                }
                schemas("response-body", "\(pointer)/content/\(escape(type.rawValue))/schema", request: false, old: content.schema?.jsonSchema, new: other.schema?.jsonSchema)
            }
            for (type, _) in after.content where before.content[type] == nil {
                add("response-media-type-added", .warn, .forward, "\(pointer)/content/\(escape(type.rawValue))", "a client built for NEW may expect \(type.rawValue) for \(status), which a server running OLD does not send")
            }
            // Headers: a client may rely on a required one; an optional one it must do without.
            // Names compare as HTTP does, without case; Content-Type is the media type's.
            let oldHeaders = Self.headers(before)
            let newHeaders = Self.headers(after)
            for (name, header) in oldHeaders.sorted(by: { $0.key < $1.key }) {
                let at = "\(pointer)/headers/\(escape(name))"
                guard let other = newHeaders[name] else {
                    if header.required {
                        add("response-header-removed", .err, .backward, at, "a client built for OLD relies on response header '\(name)', which a server running NEW no longer sends")
                    } else {
                        add("response-header-removed", .info, .backward, at, "optional response header '\(name)' is gone; a client built for OLD already does without it")
                    }
                    continue
                }
                if header.required && !other.required {
                    add("response-header-became-optional", .err, .backward, at, "a client built for OLD relies on response header '\(name)', which a server running NEW may omit")
                }
                schemas("response-header", at + "/schema", request: false, old: header.schemaOrContent.a?.schema.jsonSchema, new: other.schemaOrContent.a?.schema.jsonSchema)
            }
            for (name, header) in newHeaders.sorted(by: { $0.key < $1.key }) where header.required && !(oldHeaders[name]?.required ?? false) {
                add("response-header-added-required", .err, .forward, "\(pointer)/headers/\(escape(name))", "a client built for NEW relies on response header '\(name)', which a server running OLD does not promise")
            }
        }
        for (status, _) in old.responses.sorted(by: { $0.key < $1.key }) where new.responses[status] == nil && status != "default" {
            add("response-status-removed", .warn, .forward, "\(old.pointer)/responses/\(status)", "a server running OLD may still answer \(status), which a client built for NEW does not expect")
        }
        // A client built for OLD that knows none of the success statuses NEW answers with reads
        // every success as a failure (2XX covers every 2xx; `default` says nothing).
        let oldSuccess = old.responses.keys.filter { $0.hasPrefix("2") }.sorted()
        let newSuccess = new.responses.keys.filter { $0.hasPrefix("2") }.sorted()
        if !oldSuccess.isEmpty, !newSuccess.isEmpty, !oldSuccess.contains("2XX"), Set(oldSuccess).isDisjoint(with: newSuccess) {
            add("success-status-changed", .err, .backward, "\(old.pointer)/responses/\(oldSuccess[0])",
                "a client built for OLD expects \(oldSuccess.joined(separator: " or ")) on success, but a server running NEW answers \(newSuccess.joined(separator: " or "))")
        }
        return findings
    }
}
