import ArgumentParser
import BatonCore
import BatonMigrate
import BatonRollout
import Foundation

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Expand/contract PostgreSQL migrations in pgroll's file format, so old and new releases share one database.",
        discussion: """
            start expands: new columns and tables appear beside the old ones, a trigger keeps both in step, existing rows are backfilled in batches, and a version schema of views presents the new release's tables. The new release sets search_path to the name `baton migrate latest` prints; the old one keeps its own. complete contracts once every server runs the new release; rollback undoes start at any point.

            Examples:
              baton migrate init --database-url postgres://app@db/app
              baton migrate plan migrations/02_rename.json
              baton migrate start migrations/02_rename.json --batch-size 5000 --delay 10ms
              baton migrate latest          # public_02_rename
              baton migrate complete
              baton migrate apply migrations/   # every pending file, started and completed in order
            """,
        subcommands: [
            MigrateInit.self, MigrateStart.self, MigrateComplete.self, MigrateRollback.self, MigrateStatus.self,
            MigrateLatest.self, MigratePlan.self, MigrateApply.self, MigrateBackfill.self,
        ]
    )
}

struct DatabaseOptions: ParsableArguments {
    @Option(help: "PostgreSQL URL (postgres://USER@HOST:PORT/DB); default $DATABASE_URL.") var databaseURL: String?
    @Option(help: "The schema holding the application's tables.") var schema = "public"
    @Option(help: "How long DDL waits for a lock before it backs off and retries.") var lockTimeout = Duration.seconds(2)

    /// Runs `body` with a connected migrator and closes the connection however it ends.
    func withMigrator<T>(_ body: (Migrator) async throws -> T) async throws -> T {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] else {
            throw BatonError(.invalidArgument, "give --database-url or set DATABASE_URL")
        }
        let session = try await PostgresSession.connect(url: url, lockTimeout: lockTimeout)
        let progress = MigrationProgress()
        let migrator = Migrator(session: session, schema: schema) { progress.show($0) }
        do {
            let result = try await body(migrator)
            await session.close()
            return result
        } catch {
            await session.close()
            if let error = error as? SessionError { throw BatonError(.io, error.description) }
            throw error
        }
    }
}

struct BackfillArguments: ParsableArguments {
    @Option(help: "Rows in the first batch; each batch is one short transaction.") var batchSize = 1000
    @Option(help: "How long a batch should take; the batch size adapts to it (0 keeps --batch-size fixed).") var batchTime = Duration.milliseconds(50)
    @Option(help: "Pause between batches, to leave room for the application (e.g. 10ms).") var delay = Duration.zero
    @Option(help: "Wait while a streaming replica has more than this much WAL to replay (e.g. 16MB); needs pg_monitor.") var maxReplicaLag: String?

    func options() throws -> BackfillOptions {
        var lag: Int?
        if let maxReplicaLag {
            guard let bytes = ByteSize.parse(maxReplicaLag) else {
                throw BatonError(.invalidArgument, "--max-replica-lag '\(maxReplicaLag)': expected a size such as 16MB, 512KiB or 1048576")
            }
            lag = bytes
        }
        return BackfillOptions(batchSize: batchSize, batchTime: batchTime > .zero ? batchTime : nil, delay: delay, maxReplicaLag: lag)
    }
}

struct MigrateInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Create Baton's state schema (`baton`); safe to run again.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            try await database.withMigrator { try await $0.initialize() }
            print("baton schema ready")
        }
    }
}

struct MigrateStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Expand: apply a migration beside the current version and backfill it.",
        discussion: """
            With --app-role, start also creates a login role named after the version schema (e.g. public_02_rename), a member of the app's role, whose search_path in this database is the version schema: the new release logs in as that user, which works behind PgBouncer in transaction mode. complete drops the old version's role, rollback this one's.

            Examples:
              baton migrate start migrations/02_rename.json
              baton migrate start migrations/02_rename.json --app-role app --batch-time 20ms --max-replica-lag 16MB
              baton migrate start migrations/02_rename.json --complete
            """)
    @Argument(help: "A migration file (JSON or YAML, pgroll's format).") var file: String
    @Flag(help: "Complete right after starting (when no old release still runs).") var complete = false
    @Option(help: "The application's role: make a login role for the new version (see above).") var appRole: String?
    @OptionGroup var backfill: BackfillArguments
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            let migration = try Migration.load(path: file)
            try await database.withMigrator { migrator in
                try await migrator.start(migration, options: try backfill.options(), appRole: appRole)
                if complete { try await migrator.complete() }
            }
        }
    }
}

struct MigrateBackfill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill", abstract: "Resume the backfill of a start that was killed, from its last saved batch.",
        discussion: "Example: baton migrate backfill --resume --batch-size 500 --delay 20ms")
    @Flag(help: "Continue from the saved position (required: a backfill only ever resumes).") var resume = false
    @OptionGroup var backfill: BackfillArguments
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            guard resume else { throw BatonError(.invalidArgument, "backfill only resumes a started migration; pass --resume") }
            try await database.withMigrator { try await $0.resumeBackfill(options: try backfill.options()) }
        }
    }
}

struct MigrateComplete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "complete", abstract: "Contract the oldest migration in flight: prove constraints, drop old columns and the old version's schema.",
        discussion: """
            Run it once no server runs the old release any more. It refuses while a database session says it uses the old version: application connections name their version schema in application_name as baton:SCHEMA or baton:SCHEMA/ANYTHING (e.g. baton:public_02_rename/web1). With --fleet it also refuses while a node of that fleet runs a release whose compat.database_schema file (default: database-schema, inside the release directory) names the old version, or cannot be asked.

            Examples:
              baton migrate complete
              baton migrate complete --fleet baton.yml
              baton migrate complete --force   # although the old version is still in use
            """)
    @Flag(help: "Complete although the old version is still in use.") var force = false
    @Option(help: "The fleet's baton.yml: refuse while one of its nodes runs a release that uses the old version.") var fleet: String?
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            let rollout = try fleet.map { try Rollout(config: BatonConfig.load(path: $0)) }
            try await database.withMigrator { migrator in
                try await migrator.complete(force: force) { old in try await rollout?.nodesUsing(versionSchema: old) ?? [] }
            }
        }
    }
}

struct MigrateRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Undo the newest migration in flight; the older versions never noticed it.",
        discussion: "Example: baton migrate rollback")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing { try await database.withMigrator { try await $0.rollback() } }
    }
}

struct MigrateStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "The migrations in flight, their backfills, and the history.",
        discussion: "Example: baton migrate status --json")
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            let status = try await database.withMigrator { try await $0.status() }
            if json { return try printJSON(status) }
            guard status.initialized else { return print("not initialized: run baton migrate init") }
            if status.inFlight.isEmpty {
                print("no migration in progress")
            } else {
                print("in flight, oldest first (they complete in this order; only the last rolls back):")
                for (number, entry) in status.inFlight.enumerated() {
                    print("  \(number + 1). \(entry.name)  \(entry.status.rawValue)  version schema \(entry.versionSchema)  started \(entry.startedAt)")
                    for backfill in status.backfills where backfill.migration == entry.name {
                        print("       backfill \(backfill.table): \(backfill.rows)/\(backfill.total) rows\(backfill.done ? ", done" : "")")
                    }
                }
            }
            print("latest version schema: \(status.latest)")
            for entry in status.history { print("  \(entry.name)  completed \(entry.completedAt ?? "?")") }
        }
    }
}

struct MigrateLatest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latest", abstract: "Print the schema the newest release should use as its search_path.",
        discussion: "Example: DATABASE_SEARCH_PATH=$(baton migrate latest) ./server")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing { print(try await database.withMigrator { try await $0.latest() }) }
    }
}

struct MigratePlan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "Show the SQL each phase will run and the lock each statement takes; runs nothing.",
        discussion: "Example: baton migrate plan migrations/02_rename.json")
    @Argument(help: "A migration file.") var file: String
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "As for start: include the new version's login role.") var appRole: String?
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            let migration = try Migration.load(path: file)
            let plan = try await database.withMigrator { try await $0.plan(migration, appRole: appRole) }
            if json { return try printJSON(plan.phases.map { Phase(phase: $0.phase, statements: $0.statements) }) }
            for (phase, statements) in plan.phases {
                print("-- \(phase)\(statements.isEmpty ? ": nothing" : "")")
                for statement in statements {
                    print("\(statement.sql);\n   -- lock: \(statement.lock)\(statement.transactional ? "" : "; outside a transaction")")
                }
            }
        }
    }

    struct Phase: Encodable {
        var phase: String
        var statements: [Statement]
    }
}

struct MigrateApply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Start and complete every pending migration file of a directory, in name order.",
        discussion: "For a database no old release uses (a fresh environment, CI). Example: baton migrate apply migrations/",
        aliases: ["migrate"])
    @Argument(help: "Directory of migration files.") var directory: String
    @OptionGroup var backfill: BackfillArguments
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await failing {
            let applied = try await database.withMigrator { try await $0.migrate(directory: directory, options: try backfill.options()) }
            print(applied.isEmpty ? "nothing to apply" : "applied \(applied.joined(separator: ", "))")
        }
    }
}

/// A live bar with rows/s and ETA on a terminal, plain lines (at most one a second) otherwise.
final class MigrationProgress: @unchecked Sendable {
    private let terminal = isatty(STDOUT_FILENO) == 1
    private let lock = NSLock()
    private var lastLine = Date.distantPast

    func show(_ event: MigrationEvent) {
        lock.lock()
        defer { lock.unlock() }
        switch event {
        case .phase(let text):
            if terminal { print("\r\u{1B}[K", terminator: "") }
            print(text)
        case .backfill(let progress):
            let fraction = progress.total > 0 ? min(1, Double(progress.rows) / Double(progress.total)) : 1
            let eta = progress.rowsPerSecond > 0 ? Double(max(0, progress.total - progress.rows)) / progress.rowsPerSecond : 0
            var text = "\(progress.table): \(progress.rows)/\(progress.total) rows, \(Int(progress.rowsPerSecond)) rows/s, batches of \(progress.batchSize), ETA \(Int(eta.rounded()))s"
            if let lag = progress.replicaLag { text = "\(progress.table): waiting for a replica \(lag / 1024) KiB behind (--max-replica-lag)" }
            if terminal {
                let width = 30
                let filled = Int(fraction * Double(width))
                print("\r\u{1B}[K[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(Int(fraction * 100))% \(text)", terminator: progress.done ? "\n" : "")
                fflush(nil)
            } else if progress.done || Date().timeIntervalSince(lastLine) >= 1 {
                lastLine = Date()
                print(text + (progress.done ? ", done" : ""))
                fflush(nil)
            }
        }
    }
}
