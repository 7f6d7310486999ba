import BatonCore
import BatonMigrate
import Foundation
import Synchronization

/// Deployment state in PostgreSQL (`state: postgres://…`), shared by every machine that deploys
/// the service: the journal is a table of events in the `baton` schema, and the deploy lock a
/// session-level advisory lock, so a holder that dies (its connection closes) frees it at
/// once. Who holds it is kept beside it in `baton.locks`, and shown only while the database
/// says the lock is really held. Several services can share one database: everything is keyed
/// by the service's name.
public final class PostgresStateStore: StateStore {
    public let url: String
    public let service: String
    /// Set once the `baton` schema is known to exist, so later sessions skip creating it.
    private let schemaReady = Mutex(false)
    /// The backend pid of the session holding this process's lock, while it does.
    private let lockBackend = Mutex<Int32?>(nil)

    /// The advisory lock's first key ("btn"); the second is the service name's hash.
    static let lockClass: Int32 = 0x62_74_6E

    public init(url: String, service: String) {
        self.url = url
        self.service = service
    }

    /// The URL without its password.
    public var location: String {
        guard var components = URLComponents(string: url) else { return "postgres" }
        components.password = nil
        return components.string ?? "postgres"
    }

    public func append(_ event: RolloutEvent) async throws {
        let json = String(decoding: try FileStateStore.encoder.encode(event), as: UTF8.self)
        let values = "\(SQL.literal(service)), \(SQL.literal(event.deployment)), \(SQL.literal(json))::jsonb"
        guard let holder = lockBackend.withLock({ $0 }) else {
            return try await run { try await $0.execute("INSERT INTO baton.journal (service, deployment, event) VALUES (\(values))") }
        }
        // Written only while this process's lock session still holds the lock, in one
        // statement: a lock lost with its session stops the deploy at its next write.
        let written = try await run { session in
            try await session.rows(
                "INSERT INTO baton.journal (service, deployment, event) SELECT \(values) WHERE EXISTS (\(Self.granted(to: "\(holder)", service: SQL.literal(self.service)))) RETURNING seq"
            )
        }
        guard !written.isEmpty else {
            throw BatonError(.conflict, "\(location): this deploy no longer holds the lock of \(service) (its session ended: `baton lock release`, or a lost connection)")
        }
    }

    /// A query for the advisory lock of `service` granted to backend `pid` (SQL expressions):
    /// this database, our class, the service's hash, the two-key form.
    static func granted(to pid: String, service: String) -> String {
        """
        SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted AND p.pid = \(pid)
            AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND p.classid = \(lockClass) AND p.objsubid = 2 AND p.objid = (hashtext(\(service))::bigint & 4294967295)::oid
        """
    }

    public func events() async throws -> [RolloutEvent] {
        let rows = try await run { session in
            try await session.rows("SELECT seq, event::text FROM baton.journal WHERE service = \(SQL.literal(self.service)) ORDER BY seq")
        }
        let decoder = FileStateStore.decoder
        return try rows.map { row in
            do {
                return try decoder.decode(RolloutEvent.self, from: Data((row[1] ?? "").utf8))
            } catch {
                throw BatonError(.invalidConfiguration, "\(location): baton.journal row \(row[0] ?? "?"): unreadable event (\(error))")
            }
        }
    }

    public func lock(_ holder: LockHolder) async throws -> any HeldLock {
        // A session of its own: the lock lives exactly as long as it.
        let own = try await connect()
        do {
            let taken = try await own.value("SELECT pg_try_advisory_lock(\(Self.lockClass), hashtext(\(SQL.literal(service))))")
            guard taken == "t" else {
                await own.close()
                let current = try await lockHolder()
                throw BatonError(
                    .conflict,
                    "another baton deploy or rollback of \(service) holds the lock in \(location): \(current.map(\.description) ?? "a session that just ended; try again"); wait for it, or `baton lock release` if it is stuck"
                )
            }
            let json = String(decoding: try FileStateStore.encoder.encode(holder), as: UTF8.self)
            let backend = try await own.value("""
                INSERT INTO baton.locks (service, holder, backend_pid) VALUES (\(SQL.literal(service)), \(SQL.literal(json))::jsonb, pg_backend_pid())
                ON CONFLICT (service) DO UPDATE SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid
                RETURNING backend_pid
                """).flatMap { Int32($0) }
            lockBackend.withLock { $0 = backend }
            return PostgresLock(session: own, service: service) { [weak self] in self?.lockBackend.withLock { $0 = nil } }
        } catch let error as BatonError {
            throw error
        } catch {
            await own.close()
            throw BatonError(.unavailable, "\(location): cannot take the deploy lock: \(error)")
        }
    }

    public func lockHolder() async throws -> LockHolder? {
        guard let held = try await heldLock() else { return nil }
        return held.holder
    }

    public func breakLock() async throws -> String {
        guard let held = try await heldLock() else { return "the lock of \(service) is free" }
        let ended = try await run { session in
            try await session.value("SELECT pg_terminate_backend(\(held.backend))")
        }
        guard ended == "t" else {
            throw BatonError(.unavailable, "\(location): could not end session \(held.backend), which holds the lock for \(held.holder); it needs the right to signal it (pg_signal_backend)")
        }
        return "ended the database session of \(held.holder); the lock of \(service) is free"
    }

    /// The holder row, when the advisory lock is really held by the session it names.
    private func heldLock() async throws -> (holder: LockHolder, backend: Int32)? {
        let rows = try await run { session in
            try await session.rows("""
                SELECT l.holder::text, l.backend_pid FROM baton.locks l
                WHERE l.service = \(SQL.literal(self.service)) AND EXISTS (\(Self.granted(to: "l.backend_pid", service: "l.service")))
                """)
        }
        guard let row = rows.first, let text = row[0], let backend = row[1].flatMap({ Int32($0) }) else { return nil }
        let holder = try FileStateStore.decoder.decode(LockHolder.self, from: Data(text.utf8))
        return (holder, backend)
    }

    /// Runs `body` on a session of its own, closed afterwards (reads, and writes of a process
    /// that holds no lock): a deploy lasts long, and no idle connection is kept for it.
    private func run<T: Sendable>(_ body: @Sendable (PostgresSession) async throws -> T) async throws -> T {
        let session = try await connect()
        do {
            let result = try await body(session)
            await session.close()
            return result
        } catch let error as SessionError {
            await session.close()
            throw BatonError(.unavailable, "\(location): \(error)")
        } catch {
            await session.close()
            throw error
        }
    }

    /// A new session, with the schema in place (created once, under a transaction lock so two
    /// first deploys at once do not race).
    private func connect() async throws -> PostgresSession {
        let session: PostgresSession
        do {
            session = try await PostgresSession.connect(url: url)
        } catch let error as BatonError {
            throw BatonError(error.code, "state \(location): \(error.message)")
        }
        if schemaReady.withLock({ $0 }) { return session }
        // Only when missing: a role that may read but not create still gets status and history.
        if (try? await session.value("SELECT to_regclass('baton.journal') IS NOT NULL AND to_regclass('baton.locks') IS NOT NULL")) == "t" {
            schemaReady.withLock { $0 = true }
            return session
        }
        do {
            try await session.execute("BEGIN")
            try await session.execute("SELECT pg_advisory_xact_lock(\(Self.lockClass), 0)")
            try await session.execute("CREATE SCHEMA IF NOT EXISTS baton")
            try await session.execute("""
                CREATE TABLE IF NOT EXISTS baton.journal (
                    seq bigserial PRIMARY KEY, service text NOT NULL, deployment text NOT NULL,
                    event jsonb NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())
                """)
            try await session.execute("CREATE INDEX IF NOT EXISTS journal_by_service ON baton.journal (service, seq)")
            try await session.execute("CREATE TABLE IF NOT EXISTS baton.locks (service text PRIMARY KEY, holder jsonb NOT NULL, backend_pid integer NOT NULL)")
            try await session.execute("COMMIT")
            schemaReady.withLock { $0 = true }
        } catch {
            await session.close()
            throw BatonError(.unavailable, "state \(location): cannot set up the baton schema: \(error)")
        }
        return session
    }
}

/// The session holding the advisory lock: closing it gives the lock up.
final class PostgresLock: HeldLock {
    private let session: PostgresSession
    private let service: String
    private let released: @Sendable () -> Void

    init(session: PostgresSession, service: String, released: @escaping @Sendable () -> Void) {
        self.session = session
        self.service = service
        self.released = released
    }

    func release() async {
        released()
        // A session the server ended can leave a query waiting forever in the client: give up
        // after a few seconds (the process's exit or the server's end of it frees the lock).
        let session = self.session
        let service = self.service
        let once = Once()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let resume: @Sendable () -> Void = { if once.first() { done.resume() } }
            Task {
                try? await session.execute("DELETE FROM baton.locks WHERE service = \(SQL.literal(service)) AND backend_pid = pg_backend_pid()")
                await session.close()
                resume()
            }
            Task {
                try? await Task.sleep(for: .seconds(5))
                resume()
            }
        }
    }
}

/// True the first time only.
final class Once: Sendable {
    private let taken = Mutex(false)

    func first() -> Bool {
        taken.withLock { taken in
            defer { taken = true }
            return !taken
        }
    }
}
