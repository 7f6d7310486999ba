import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Routes of TranslateApp: `/up`, an HTML page, and a small JSON API over in-memory projects.
struct TranslateRouter: Sendable {
    let release: Release
    let fault: Fault
    let store = TranslationStore()
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
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page())))
        }
        app.get("api/projects") { _, _ -> [ProjectSummary] in
            store.projects().map { ProjectSummary(project: $0, release: release) }
        }
        app.get("api/projects/:id/segments") { _, context -> [Segment] in
            let id = try context.parameters.require("id", as: Int.self)
            guard let segments = store.segments(project: id) else { throw HTTPError(.notFound, message: "no project \(id)") }
            return segments
        }
        app.put("api/segments/:id") { request, context -> Segment in
            let id = try context.parameters.require("id", as: Int.self)
            let update = try await request.decode(as: SegmentUpdate.self, context: context)
            guard let segment = store.update(segment: id, translation: update.translation) else {
                throw HTTPError(.notFound, message: "no segment \(id)")
            }
            return segment
        }
        return router
    }

    func countRequest() -> Int { requests.next() }

    private func page() -> String {
        let rows = store.projects().map { project -> String in
            let summary = ProjectSummary(project: project, release: release)
            let progress = summary.progress.map { "<td>\(Int($0 * 100))% translated</td>" } ?? ""
            return "<tr><td>\(project.name)</td><td>\(project.segments.count) segments</td>\(progress)</tr>"
        }.joined()
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>Translate \(release.rawValue)</title></head>
            <body><h1>Projects</h1><table>\(rows)</table><footer>release \(release.rawValue)</footer></body></html>
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
