import BatonCore
import Foundation

/// Stops two deploys at once: an exclusive `flock` on `deploy.lock`, released by the kernel
/// when the holder exits, however it exits.
public final class DeployLock: Sendable {
    private let fd: Int32

    public static func acquire(stateDirectory: String) throws -> DeployLock {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = stateDirectory + "/deploy.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatonError(.io, "\(path): cannot open (errno \(errno))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, 32, 0)
            close(fd)
            let holder = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : "?"
            throw BatonError(.conflict, "another baton deploy or rollback is running (pid \(holder)); wait for it or stop it first")
        }
        ftruncate(fd, 0)
        let pid = String(getpid())
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
        return DeployLock(fd: fd)
    }

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }
}
