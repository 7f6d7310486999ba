import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Routes of TranslateApp: `/up`, an HTML page, and a small JSON API over in-memory projects.
struct TranslateRouter: Sendable {
    let release: Release
    let fault: Fault
    let store: any TranslationStore
    let requests = RequestCounter()

    func build() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ReleaseHeaderMiddleware(release: release))
        router.get("up") { _, _ -> Response in
            fault == .failHealth
                ? Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "unhealthy\n")))
                : Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok \(release.rawValue)\n")))
        }
        let app = router.group().add(middleware: FaultMiddleware(fault: fault, counter: self))
        app.get("/") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/html; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: try await page())))
        }
        app.get("assets/:name") { _, context -> Response in
            let name = try context.parameters.require("name")
            var headers = HTTPFields()
            // As a bundler's build leaves it: this release's assets and their manifest, nothing
            // of other releases. A page of the other release that lands here gets a 404 unless
            // the proxy keeps assets (baton proxy --asset-prefix).
            if name == "manifest.json" {
                headers[.contentType] = "application/json"
                let manifest = #"{"app.js":{"file":"\#(Assets.name(for: release))"}}"#
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: manifest)))
            }
            guard name == Assets.name(for: release), let script = Assets.sources[release] else { throw HTTPError(.notFound, message: "no asset \(name)") }
            headers[.contentType] = "text/javascript"
            headers[.cacheControl] = "public, max-age=31536000, immutable"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: script)))
        }
        app.post("login") { request, context -> Response in
            struct Login: Decodable { var user: String }
            let login = try await request.decode(as: Login.self, context: context)
            let session = try await store.login(user: login.user)
            var headers = HTTPFields()
            headers[.setCookie] = "session=\(session); Path=/; HttpOnly; SameSite=Lax"
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"user":"\#(login.user)"}"#)))
        }
        app.get("api/projects") { request, _ -> [ProjectSummary] in
            _ = try await user(of: request)
            return try await store.projects().map { ProjectSummary(project: $0, release: release) }
        }
        app.get("api/projects/:id/segments") { request, context -> [Segment] in
            _ = try await user(of: request)
            let id = try context.parameters.require("id", as: Int.self)
            guard let project = try await store.projects().first(where: { $0.id == id }) else { throw HTTPError(.notFound, message: "no project \(id)") }
            return project.segments
        }
        app.put("api/segments/:id") { request, context -> Segment in
            _ = try await user(of: request)
            let id = try context.parameters.require("id", as: Int.self)
            let update = try await request.decode(as: SegmentUpdate.self, context: context)
            guard let segment = try await store.update(segment: id, translation: update.translation) else {
                throw HTTPError(.notFound, message: "no segment \(id)")
            }
            return segment
        }
        app.post("api/notes") { request, context -> Response in
            struct NewNote: Decodable { var text: String }
            let user = try await user(of: request)
            let note = try await request.decode(as: NewNote.self, context: context)
            try await store.add(note: note.text, user: user)
            return Response(status: .created, body: .init(byteBuffer: ByteBuffer(string: note.text)))
        }
        app.get("api/notes/:token") { request, context -> Note in
            _ = try await user(of: request)
            let token = try context.parameters.require("token")
            guard let note = try await store.note(token) else { throw HTTPError(.notFound, message: "no note \(token)") }
            return note
        }
        return router
    }

    /// The logged-in user, or 401: a user the app does not know must log in again.
    private func user(of request: Request) async throws -> String {
        let cookie = request.headers[.cookie] ?? ""
        let session = cookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("session=") }.map { String($0.dropFirst(8)) }
        guard let session, let user = try await store.user(session: session) else {
            throw HTTPError(.unauthorized, message: "log in first: POST /login")
        }
        return user
    }

    func countRequest() -> Int { requests.next() }

    private func page() async throws -> String {
        let rows = try await store.projects().map { project -> String in
            let summary = ProjectSummary(project: project, release: release)
            let progress = summary.progress.map { "<td>\(Int($0 * 100))% translated</td>" } ?? ""
            return "<tr><td>\(project.name)</td><td>\(project.segments.count) segments</td>\(progress)</tr>"
        }.joined()
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>Translate \(release.rawValue)</title></head>
            <body><h1>Projects</h1><table>\(rows)</table><footer>release \(release.rawValue)</footer>
            <script src="/assets/\(Assets.name(for: release))"></script></body></html>
            """
    }
}

struct ReleaseHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    let release: Release

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.batonRelease] = release.rawValue
        return response
    }
}

struct FaultMiddleware<Context: RequestContext>: RouterMiddleware {
    let fault: Fault
    let counter: TranslateRouter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let count = counter.countRequest()
        switch fault {
        case .crashAfter(let limit) where count >= limit:
            FileHandle.standardError.write("TranslateApp: crashing on request \(count) (TRANSLATE_FAULT)\n".data(using: .utf8)!)
            exit(70)
        case .errors:
            throw HTTPError(.internalServerError, message: "injected failure (TRANSLATE_FAULT=errors)")
        default:
            return try await next(request, context)
        }
    }
}

extension HTTPField.Name {
    static let batonRelease = Self("X-Baton-Release")!
}

final class RequestCounter: Sendable {
    private let count = Atomic<Int>(0)
    func next() -> Int { count.wrappingAdd(1, ordering: .relaxed).newValue }
}

/// The page's script, one per release, named by a hash of its content.
enum Assets {
    static let sources: [Release: String] = [
        .v5_3: "document.title = document.title + ' (5.3)';\n",
        .v5_4: "document.title = document.title + ' (5.4)'; document.body.dataset.progress = 'on';\n",
    ]

    static func name(for release: Release) -> String {
        "app.\(hash(sources[release]!)).js"
    }

    /// FNV-1a, 64 bits: stable across runs and machines, unlike Hasher.
    static func hash(_ text: String) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
        return String(value, radix: 16)
    }
}
