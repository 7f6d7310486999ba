import Foundation

/// Executables built beside the running test binary (`swift test` builds every product), so
/// tests can start TranslateApp or the `baton` CLI as real processes.
public enum BuiltProducts {
    public static func path(_ name: String) throws -> String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        struct Missing: Error, CustomStringConvertible { var description: String }
        throw Missing(description: "\(name) not found near \(CommandLine.arguments[0]); run `swift build` first")
    }
}
