import BatonCore
import Foundation

/// Runs baton.yml's hooks: `/bin/sh -c` in baton.yml's directory, in a process group of its
/// own so a hook that overruns `hooks.timeout` is killed with everything it started. Output
/// goes to `logs/hook-NAME.log` under the state directory.
public struct HookRunner: Sendable {
    public let directory: String
    public let logDirectory: String
    public let timeout: Duration

    public init(directory: String, logDirectory: String, timeout: Duration) {
        self.directory = directory
        self.logDirectory = logDirectory
        self.timeout = timeout
    }

    public func run(_ command: String, name: String, environment: [String: String]) async throws {
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        let log = "\(logDirectory)/hook-\(name).log"
        // The directory and the command as positional parameters: no quoting to get wrong.
        let pid = try ChildProcess.spawn(
            ["/bin/sh", "-c", "cd \"$1\" && eval \"$2\"", "baton-hook", directory.isEmpty ? "." : directory, command],
            environment: ProcessInfo.processInfo.environment.merging(environment) { $1 },
            output: log,
            detached: true
        )
        guard let code = try await ChildProcess.wait(pid, timeout: timeout, group: true) else {
            throw RolloutFailure(message: "hook \(name) (\(command)) did not finish within \(timeout.shortDescription) (hooks.timeout) and was killed; see \(log)")
        }
        guard code == 0 else {
            let how = code > 128 ? "was killed by signal \(code - 128)" : "exited with status \(code)"
            throw RolloutFailure(message: "hook \(name) (\(command)) \(how); see \(log)")
        }
    }
}
