import Foundation

/// Executables built beside the running test binary (`swift test` builds every product), so
/// tests can start TranslateApp or the `baton` CLI as real processes.
public enum BuiltProducts {
    public static func path(_ name: String) throws -> String {
        for directory in directories(levels: 4) where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
            return directory + "/" + name
        }
        struct Missing: Error, CustomStringConvertible { var description: String }
        throw Missing(description: "\(name) not found near \(CommandLine.arguments[0]); run `swift build` first")
    }

    /// The package's root directory, for a test file (`Tests/TARGET/File.swift`) that reads
    /// the repository (docs, examples, scripts).
    public static func packageRoot(_ file: String = #filePath) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The running executable, as the kernel knows it (whatever `argv[0]` says).
    public static func currentExecutable() throws -> String {
        do {
            return try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        } catch {
            throw BatonError(.notFound, "cannot tell where this executable is (/proc/self/exe): \(error.localizedDescription); pass its path")
        }
    }

    /// The running executable's directory and `levels - 1` of its parents, nearest first.
    public static func directories(levels: Int) -> [String] {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        var result: [String] = []
        for _ in 0..<levels {
            result.append(directory.path)
            directory = directory.deletingLastPathComponent()
        }
        return result
    }
}
