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
    /// Words in `source`; 5.4 keeps it in the database (migration 54_segment_words) and weighs
    /// progress by it. 5.3 clients ignore the extra field.
    var words: Int?

    init(id: Int, source: String, translation: String?, words: Int? = nil) {
        self.id = id
        self.source = source
        self.translation = translation
        self.words = words
    }

    var wordCount: Int { words ?? source.split(whereSeparator: \.isWhitespace).count }
}

struct SegmentUpdate: Codable, Sendable {
    var translation: String
}

/// A note a user saved; the probe writes one with a unique token and reads it back later.
struct Note: Codable, Sendable, ResponseCodable {
    var token: String
    var user: String
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
            let total = project.segments.map(\.wordCount).reduce(0, +)
            let done = project.segments.filter { $0.translation != nil }.map(\.wordCount).reduce(0, +)
            progress = total == 0 ? 0 : Double(done) / Double(total)
        }
    }
}

/// Where TranslateApp keeps projects, sessions and notes: PostgreSQL when `--database-url` is
/// given (so any server serves any user and a restart logs no one out), memory otherwise.
protocol TranslationStore: Sendable {
    func projects() async throws -> [Project]
    func update(segment id: Int, translation: String) async throws -> Segment?
    /// Starts a session for `user`; returns its id.
    func login(user: String) async throws -> String
    /// The user of a session, or nil when there is none.
    func user(session: String) async throws -> String?
    func add(note token: String, user: String) async throws
    func note(_ token: String) async throws -> Note?
}

let seedProjects = [
    Project(id: 1, name: "Website", segments: [
        Segment(id: 1, source: "Welcome", translation: "Willkommen"),
        Segment(id: 2, source: "Sign in", translation: nil),
        Segment(id: 3, source: "Pricing", translation: "Preise"),
    ]),
    Project(id: 2, name: "Mobile app", segments: [
        Segment(id: 4, source: "Settings", translation: nil),
        Segment(id: 5, source: "Log out", translation: "Abmelden"),
    ]),
]

/// Memory only: what a single server without a database can do (sessions die with it).
final class MemoryStore: TranslationStore {
    private struct State {
        var projects = seedProjects
        var sessions: [String: String] = [:]
        var notes: [String: Note] = [:]
    }

    private let state = Mutex(State())

    func projects() -> [Project] { state.withLock { $0.projects } }

    func update(segment id: Int, translation: String) -> Segment? {
        state.withLock { state in
            for p in state.projects.indices {
                if let s = state.projects[p].segments.firstIndex(where: { $0.id == id }) {
                    state.projects[p].segments[s].translation = translation
                    return state.projects[p].segments[s]
                }
            }
            return nil
        }
    }

    func login(user: String) -> String {
        let id = UUID().uuidString
        state.withLock { $0.sessions[id] = user }
        return id
    }

    func user(session: String) -> String? { state.withLock { $0.sessions[session] } }

    func add(note token: String, user: String) { state.withLock { $0.notes[token] = Note(token: token, user: user) } }

    func note(_ token: String) -> Note? { state.withLock { $0.notes[token] } }
}
