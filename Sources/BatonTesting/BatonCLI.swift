import BatonCore
import BatonRollout
import Foundation

/// The `baton` executable as a real process, for tests of what a user (or CI) runs.
public enum BatonCLI {
    /// Starts `baton ARGUMENTS` in `directory` in the background, its output discarded.
    public static func start(_ arguments: [String], in directory: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("baton"))
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `baton ARGUMENTS` in `directory` (the current one when nil) with stdout and stderr
    /// together; with `killAfter`, SIGKILLs it as soon as its `--json` output reports that step
    /// (with `whenOn`, that step of that node). Returns the exit status and the output.
    @discardableResult
    public static func run(
        _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
        killAfter step: RolloutEvent.Step? = nil, whenOn node: String? = nil
    ) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try BuiltProducts.path("baton"))
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        var output = Data()
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        while true {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            output.append(chunk)
            if let step, output.split(separator: 0x0A).contains(where: { line in
                guard let event = try? decoder.decode(RolloutEvent.self, from: Data(line)) else { return false }
                return event.step == step && (node == nil || event.node == node)
            }) {
                kill(process.processIdentifier, SIGKILL)
                break
            }
        }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
