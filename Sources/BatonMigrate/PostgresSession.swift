import BatonCore
import Foundation
import Logging
import PostgresNIO

/// One connection to the database. postgres-nio speaks the extended protocol, one statement per
/// query; `executeScript` runs a migration's raw SQL, which may hold several. Values come back as
/// text, the way psql shows them.
public final class PostgresSession: Sendable {
    let connection: PostgresConnection
    private let logger = Logger(label: "baton.migrate.db")
    /// How long a DDL statement waits for a lock before it gives up and is retried.
    public let lockTimeout: Duration

    private init(connection: PostgresConnection, lockTimeout: Duration) {
        self.connection = connection
        self.lockTimeout = lockTimeout
    }

    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
    public static func connect(url: String, lockTimeout: Duration = .seconds(2)) async throws -> PostgresSession {
        guard let components = URLComponents(string: url), components.scheme == "postgres" || components.scheme == "postgresql",
            let host = components.host, let user = components.user
        else {
            throw BatonError(.invalidArgument, "database url '\(url)': expected postgres://USER@HOST:PORT/DATABASE")
        }
        let database = components.path.count > 1 ? String(components.path.dropFirst()) : "postgres"
        var configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password, database: database, tls: .disable)
        configuration.options.connectTimeout = .seconds(10)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "baton.migrate.db"))
            return PostgresSession(connection: connection, lockTimeout: lockTimeout)
        } catch {
            throw BatonError(.unavailable, "cannot connect to \(host):\(components.port ?? 5432)/\(database): \(Self.describe(error))")
        }
    }

    public func close() async { try? await connection.close() }

    public func execute(_ sql: String) async throws {
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        } catch {
            throw SessionError(error, sql: sql)
        }
    }

    /// Rows as text cells (`nil` for NULL).
    public func rows(_ sql: String) async throws -> [[String?]] {
        do {
            return try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect().map { row in
                row.map(Self.text)
            }
        } catch {
            throw SessionError(error, sql: sql)
        }
    }

    /// Rows decoded column by column into Swift types, e.g. `as: (String, Int64, Bool?).self`.
    public func rows<each Column: PostgresDecodable & Sendable>(_ sql: String, as types: (repeat each Column).Type) async throws -> [(repeat each Column)] {
        do {
            var result: [(repeat each Column)] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(types) { result.append(row) }
            return result
        } catch {
            throw SessionError(error, sql: sql)
        }
    }

    /// Several statements at once, as PL/pgSQL's EXECUTE allows, inside the current transaction.
    public func executeScript(_ sql: String) async throws {
        let tag = "$baton_script_\(UInt32.random(in: 0...UInt32.max))$"
        try await execute("DO \(tag) BEGIN EXECUTE \(SQL.literal(sql)); END \(tag)")
    }

    private static func text(_ cell: PostgresCell) -> String? {
        guard let bytes = cell.bytes else { return nil }
        if cell.format == .text { return String(buffer: bytes) }
        switch cell.dataType {
        case .bool: return bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) == 1 ? "t" : "f"
        case .int2: return (try? cell.decode(Int16.self)).map(String.init)
        case .int4, .oid: return (try? cell.decode(Int32.self)).map(String.init)
        case .int8: return (try? cell.decode(Int64.self)).map(String.init)
        case .float4, .float8: return (try? cell.decode(Double.self)).map { $0.description }
        case .numeric: return (try? cell.decode(Decimal.self)).map { "\($0)" }
        case .text, .varchar, .name, .bpchar, .unknown, .json: return String(buffer: bytes)
        default: return (try? cell.decode(String.self)) ?? PostgresData(type: cell.dataType, formatCode: cell.format, value: bytes).description
        }
    }

    public func value(_ sql: String) async throws -> String? { try await rows(sql).first?.first ?? nil }

    /// SQLSTATE of a lock request that gave up at `lock_timeout`.
    static let lockNotAvailable: Set<String> = ["55P03"]

    /// Runs `body` again after a growing pause (from `pause`, doubling up to `maxPause`) while it
    /// fails with one of `states`, at most `attempts` times in all.
    func retrying<T>(on states: Set<String>, attempts: Int, pause: Duration = .milliseconds(50), maxPause: Duration = .seconds(5), _ body: () async throws -> T) async throws -> T {
        var pause = pause
        for _ in 1..<attempts {
            do {
                return try await body()
            } catch let error as SessionError where states.contains(error.sqlState ?? "") {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, maxPause)
            }
        }
        return try await body()
    }

    /// Runs `body` in a transaction whose statements wait at most `lockTimeout` for a lock; when a
    /// lock is not granted in time the whole transaction is rolled back and tried again after a
    /// growing pause, so a migration never queues behind a long query while blocking everyone else.
    public func transaction<T>(attempts: Int = 8, _ body: () async throws -> T) async throws -> T {
        try await retrying(on: Self.lockNotAvailable, attempts: attempts) {
            try await execute("BEGIN")
            do {
                try await execute("SET LOCAL lock_timeout = '\(lockTimeout.milliseconds)ms'")
                let result = try await body()
                try await execute("COMMIT")
                return result
            } catch {
                try? await execute("ROLLBACK")
                throw error
            }
        }
    }

    /// A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY), with the same
    /// lock timeout and retries.
    public func executeAlone(_ sql: String, attempts: Int = 8) async throws {
        try await execute("SET lock_timeout = '\(lockTimeout.milliseconds)ms'")
        do {
            try await retrying(on: Self.lockNotAvailable, attempts: attempts) { try await execute(sql) }
        } catch {
            try? await execute("RESET lock_timeout")
            throw error
        }
        try await execute("RESET lock_timeout")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }
}

/// A failed statement: PostgreSQL's message and SQLSTATE, and the statement.
public struct SessionError: Error, CustomStringConvertible {
    public var message: String
    public var sqlState: String?
    public var sql: String

    init(_ error: any Error, sql: String) {
        message = PostgresSession.describe(error)
        sqlState = (error as? PSQLError)?.serverInfo?[.sqlState]
        self.sql = sql
    }

    public var description: String {
        let statement = sql.split(separator: "\n").first.map(String.init) ?? sql
        return "\(message) (in: \(statement.count > 120 ? statement.prefix(117) + "..." : statement))"
    }
}
