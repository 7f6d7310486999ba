import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Tells systemd (a `Type=notify` unit, `NotifyAccess=all`) that the proxy is ready and, after
/// `baton proxy upgrade`, which process is the service now: without `MAINPID`, the old
/// process's exit would look like the service's and systemd would stop the new one with it.
enum SystemdNotifier {
    /// Sends `state` ("READY=1\nMAINPID=…") to $NOTIFY_SOCKET; nothing when it is not set.
    static func notify(_ state: String) {
        guard let path = ProcessInfo.processInfo.environment["NOTIFY_SOCKET"], !path.isEmpty else { return }
        let fd = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        // "@name" is an abstract socket: a leading NUL instead of the @.
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let message = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, CInt(MSG_NOSIGNAL), $0, length) }
        }
    }
}
