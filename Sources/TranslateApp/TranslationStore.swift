import Foundation
import Hummingbird
import Synchronization

struct Project: Codable, Sendable {
    var id: Int
    var name: String
    var segments: [Segment]
}

struct Segment: Codable, Sendable, ResponseCodable {
    var id: Int
    var source: String
    var translation: String?
}

struct SegmentUpdate: Codable, Sendable {
    var translation: String
}

/// What the project list shows; 5.4 adds `progress`, which 5.3 clients simply ignore.
struct ProjectSummary: Codable, Sendable, ResponseCodable {
    var id: Int
    var name: String
    var segmentCount: Int
    var progress: Double?

    init(project: Project, release: Release) {
        id = project.id
        name = project.name
        segmentCount = project.segments.count
        if release == .v5_4 {
            let done = project.segments.filter { $0.translation != nil }.count
            progress = project.segments.isEmpty ? 0 : Double(done) / Double(project.segments.count)
        }
    }
}

/// In-memory projects (the database arrives with the probe and migrate issues).
final class TranslationStore: Sendable {
    private let state = Mutex<[Project]>([
        Project(id: 1, name: "Website", segments: [
            Segment(id: 1, source: "Welcome", translation: "Willkommen"),
            Segment(id: 2, source: "Sign in", translation: nil),
            Segment(id: 3, source: "Pricing", translation: "Preise"),
        ]),
        Project(id: 2, name: "Mobile app", segments: [
            Segment(id: 4, source: "Settings", translation: nil),
            Segment(id: 5, source: "Log out", translation: "Abmelden"),
        ]),
    ])

    func projects() -> [Project] { state.withLock { $0 } }

    func segments(project id: Int) -> [Segment]? {
        state.withLock { $0.first { $0.id == id }?.segments }
    }

    func update(segment id: Int, translation: String) -> Segment? {
        state.withLock { projects in
            for p in projects.indices {
                if let s = projects[p].segments.firstIndex(where: { $0.id == id }) {
                    projects[p].segments[s].translation = translation
                    return projects[p].segments[s]
                }
            }
            return nil
        }
    }
}
