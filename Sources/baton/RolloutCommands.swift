import ArgumentParser
import BatonCore
import BatonRollout
import Foundation

/// Options every command that reads baton.yml shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "The config file.")
    var config = "baton.yml"

    func load() throws -> BatonConfig { try BatonConfig.load(path: config) }
}

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented example baton.yml.",
        discussion: "Example: baton init && $EDITOR baton.yml"
    )
    @Option(name: [.customShort("c"), .long], help: "Where to write it.") var config = "baton.yml"
    @Flag(help: "Overwrite an existing file.") var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: config) && !force {
            throw ValidationErrorLine(message: "\(config) exists; use --force to overwrite it")
        }
        try BatonConfig.example.write(toFile: config, atomically: true, encoding: .utf8)
        print("wrote \(config); edit the nodes and the start command, then `baton release add DIR --id VERSION`")
    }
}

struct ReleaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Add and list release artifacts (kept under STATE_DIR/releases).",
        discussion: """
            Examples:
              baton release add .build/release --id 5.4
              baton release list
            """,
        subcommands: [Add.self, List.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a directory in as a release.", discussion: "Example: baton release add dist/ --id 5.4")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The directory holding the release.") var directory: String
        @Option(help: "The release's id, e.g. 5.4.") var id: String
        func run() async throws {
            try await failing {
                let config = try options.load()
                let rollout = Rollout(config: config)
                let current = try await rollout.journal.currentRelease()
                let previous = try await rollout.journal.deployments().last { $0.finished }?.previous
                let pruned = try rollout.releases.add(
                    source: directory, id: id, keep: config.release.keep, protected: Set([current, previous].compactMap { $0 })
                )
                print("added release \(id) at \(rollout.releases.path(of: id))" + (pruned.isEmpty ? "" : "; removed old \(pruned.joined(separator: ", "))"))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List releases, oldest first.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await failing {
                let rollout = Rollout(config: try options.load())
                let current = try await rollout.journal.currentRelease()
                let releases = rollout.releases.list()
                if json {
                    try printJSON(releases)
                } else if releases.isEmpty {
                    print("no releases; add one with `baton release add DIR --id VERSION`")
                } else {
                    for release in releases { print("\(release.id == current ? "*" : " ") \(release.id)  \(release.added)  \(release.path)") }
                }
            }
        }
    }
}

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Upgrade every node to a release, one batch at a time, rolling back on failure.",
        discussion: """
            Each node is drained on every proxy, stopped, started on the new release, health-checked and re-admitted; never more than max_unavailable at once (with max_surge the new one starts beside the old first). The canary batch is observed before the rest; a failed step or a breached observe window rolls every upgraded node back and exits non-zero. Every step is journaled first: after a crash, --resume finishes the deployment.

            Examples:
              baton deploy 5.4
              baton deploy 5.4 --json > events.jsonl
              baton deploy --resume
            """
    )
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The release to deploy (see `baton release list`).") var release: String?
    @Flag(help: "Finish an interrupted deployment.") var resume = false
    @Flag(help: "Deploy even when the compat pre-flight finds the releases' OpenAPI documents incompatible.") var force = false
    @Flag(help: "Print events as JSON lines.") var json = false

    func run() async throws {
        try await failing {
            let rollout = Rollout(config: try options.load(), reporter: makeReporter(json: json))
            try await rollout.deploy(release: release, resume: resume, force: force)
        }
    }
}

struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Return every node to a release (default: the one before the last deploy).",
        discussion: """
            Examples:
              baton rollback          # the release before the current (or interrupted) deployment
              baton rollback 5.2
            """
    )
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The release to return to.") var release: String?
    @Flag(help: "Print events as JSON lines.") var json = false

    func run() async throws {
        try await failing {
            let rollout = Rollout(config: try options.load(), reporter: makeReporter(json: json))
            try await rollout.rollback(to: release)
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Each node's release, process, backend state on each proxy, and health.",
        discussion: "Examples:\n  baton status\n  baton status --json | jq '.nodes[].instances[].release'"
    )
    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await failing {
            let status = try await FleetStatus.gather(Rollout(config: try options.load()))
            if json {
                try printJSON(status)
            } else {
                print(status.render())
            }
        }
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Who deployed what, when, and how it ended; newest first.",
        discussion: "With `state: postgres://…` every machine's deployments are listed.\n\nExamples:\n  baton history\n  baton history --limit 5 --json"
    )
    @OptionGroup var options: ConfigOptions
    @Option(help: "Show at most this many.") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        try await failing {
            let entries = Array(try await Rollout(config: try options.load()).journal.history().prefix(max(0, limit)))
            if json { return try printJSON(entries) }
            guard !entries.isEmpty else { return print("no deployments yet") }
            print(Table.render(
                header: ["STARTED", "BY", "WHAT", "OUTCOME", "TOOK", "ID", "BATON"],
                rows: entries.map { entry in
                    let what = "\(entry.kind) \(entry.previous.map { "\($0) → " } ?? "")\(entry.release)"
                    let took = entry.ended.map { Duration.seconds($0.timeIntervalSince(entry.started)).shortDescription } ?? "-"
                    let outcome = entry.outcome.rawValue + (entry.reason.map { ": \($0.prefix(80))" } ?? "")
                    return [entry.started.formatted(.iso8601), entry.by ?? "?", what, outcome, took, entry.deployment, entry.baton ?? "?"]
                }
            ))
        }
    }
}

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "See or break the deploy lock that stops two deploys at once.",
        discussion: """
            Examples:
              baton lock status
              baton lock release      # ends a stuck holder's database session (state: postgres://…)
            """,
        subcommands: [Status.self, Release.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Who holds the lock, from where, since when.", discussion: "Example: baton lock status --json")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await failing {
                let store = Rollout(config: try options.load()).journal.store
                let holder = try await store.lockHolder()
                if json { return try printJSON(holder.map { ["holder": $0] } ?? [:]) }
                print(holder.map { "held by \($0)" } ?? "free (\(store.location))")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Free the lock of a holder that is stuck.",
            discussion: "The interrupted deployment stays in the journal: finish it with `baton deploy --resume`.\n\nExample: baton lock release"
        )
        @OptionGroup var options: ConfigOptions
        func run() async throws {
            try await failing {
                print(try await Rollout(config: try options.load()).journal.store.breakLock())
            }
        }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show what `baton deploy RELEASE` would do, in order, without doing it.",
        discussion: "Exits 1 when the deploy would be refused (REFUSED: lines say why).\n\nExample: baton plan 5.4"
    )
    @OptionGroup var options: ConfigOptions
    @Argument(help: "The release.") var release: String

    func run() async throws {
        try await failing {
            let plan = try await Rollout(config: try options.load()).plan(release: release)
            for line in plan.lines { print(line) }
            // A refused plan fails, so a CI step can run `baton plan` before `baton deploy`.
            if plan.isRefused { throw ExitCode.failure }
        }
    }
}

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Change the fleet's nodes.",
        discussion: """
            A node is added by adding it to baton.yml's nodes and deploying: the deploy starts the current release on it. A node leaves with `baton node remove`, and then from baton.yml.

            Examples:
              baton node remove web3
              baton node install-baton             # this binary to every ssh:// host, e.g. to run `baton proxy` there
            """,
        subcommands: [Remove.self, InstallBaton.self]
    )

    struct InstallBaton: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install-baton",
            abstract: "Copy this baton binary to the nodes' SSH hosts (checked by SHA-256; a host that has it is left alone).",
            discussion: """
                It lands in ssh.directory/bin/baton. Ship scripts/dist's static build: it runs on hosts without Swift.

                Examples:
                  baton node install-baton
                  baton node install-baton web1 web2 --binary dist/baton-0.15.0-linux-x86_64/baton
                """)
        @OptionGroup var options: ConfigOptions
        @Argument(help: "ssh:// nodes whose hosts get it (default: all).") var nodes: [String] = []
        @Option(help: "The binary to copy (default: this one).") var binary: String?

        func run() async throws {
            try await failing {
                let path = try binary ?? BuiltProducts.currentExecutable()
                for line in try await Rollout(config: try options.load()).installBaton(path, nodes: nodes) { print(line) }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain a node on every proxy, stop its instances and forget them.",
            discussion: "Example: baton node remove web3"
        )
        @OptionGroup var options: ConfigOptions
        @Argument(help: "The node's name.") var name: String

        func run() async throws {
            try await failing {
                for line in try await Rollout(config: try options.load()).removeNode(name) { print(line) }
            }
        }
    }
}
