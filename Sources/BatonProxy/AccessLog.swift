import BatonCore
import Foundation
import Logging
import Synchronization

/// One JSON line per request (`--access-log FILE`, or `-` for stderr), off by default. Retries,
/// 502s and 504s also go to the proxy's log whether or not the access log is on.
public final class AccessLog: Sendable {
    public struct Entry: Encodable, Sendable {
        var time: String
        var client: String
        var method: String
        var target: String
        var status: Int
        var backend: String
        var attempts: Int
        var durationMs: Double
        var error: String?
        var requestId: String
    }

    private struct Output: @unchecked Sendable {
        // Only used under the mutex.
        var handle: FileHandle
        let formatter: ISO8601DateFormatter = {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return formatter
        }()
    }

    private let output: Mutex<Output?>
    private let enabled: Bool
    private let logger: Logger

    /// - Parameter path: nil for no access log, "-" for stderr, else a file appended to.
    public init(path: String?, logger: Logger) throws {
        self.logger = logger
        enabled = path != nil
        guard let path else {
            output = Mutex(nil)
            return
        }
        if path == "-" {
            output = Mutex(Output(handle: FileHandle.standardError))
            return
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw BatonError(.io, "--access-log \(path): cannot create the file")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw BatonError(.io, "--access-log \(path): cannot open the file for writing")
        }
        handle.seekToEndOfFile()
        output = Mutex(Output(handle: handle))
    }

    /// Whether `record` has anything to do for a request that ended this way: the request path
    /// asks first, so a quiet success costs nothing when the access log is off.
    func wants(status: Int, attempts: Int) -> Bool {
        status == 502 || status == 504 || attempts > 1 || enabled
    }

    func record(_ entry: Entry) {
        if entry.status == 502 || entry.status == 504 || entry.attempts > 1 {
            logger.warning("request \(entry.status == 502 || entry.status == 504 ? "failed" : "retried")", metadata: [
                "method": "\(entry.method)", "target": "\(entry.target)", "status": "\(entry.status)",
                "backend": "\(entry.backend)", "attempts": "\(entry.attempts)", "error": "\(entry.error ?? "-")",
                "request_id": "\(entry.requestId)",
            ])
        }
        guard enabled else { return }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        output.withLock { output in
            guard let output else { return }
            var entry = entry
            entry.time = output.formatter.string(from: Date())
            guard var line = try? encoder.encode(entry) else { return }
            line.append(0x0A)
            output.handle.write(line)
        }
    }
}
