import BatonCore
import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Listening sockets the proxy opens itself rather than through NIO, so their descriptors can be
/// handed to the process that replaces it (`baton proxy upgrade`): the socket never closes, so
/// a client connecting during the upgrade is never refused.
enum ListeningSocket {
    /// A socket bound to `endpoint` and listening, close-on-exec.
    static func open(_ endpoint: Endpoint, backlog: Int32 = 1024) throws -> CInt {
        switch endpoint {
        case .tcp(let host, let port):
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(host.isEmpty ? "0.0.0.0" : host, port: port)
            } catch {
                throw BatonError(.io, "cannot listen on \(endpoint): cannot resolve \(host)", underlying: error)
            }
            let fd = socket(CInt(address.protocol.rawValue), CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw failure(endpoint, "socket") }
            var one: CInt = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
            return try bindAndListen(fd, address, endpoint, backlog: backlog)
        case .unix(let path):
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            let address: SocketAddress
            do {
                address = try SocketAddress(unixDomainSocketPath: path)
            } catch {
                throw BatonError(.io, "cannot listen on \(path): not a usable socket path", underlying: error)
            }
            let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw failure(endpoint, "socket") }
            // Bound anew only when nothing answers there: a live proxy's socket is never unlinked.
            if isAnswering(path) {
                close(fd)
                throw BatonError(.conflict, "cannot listen on \(path): another process is serving it (is a proxy already running?)")
            }
            unlink(path)
            return try bindAndListen(fd, address, endpoint, backlog: backlog)
        }
    }

    /// Binds `fd` to `address` and listens; closes it on failure.
    private static func bindAndListen(_ fd: CInt, _ address: SocketAddress, _ endpoint: Endpoint, backlog: Int32) throws -> CInt {
        let bound = address.withSockAddr { pointer, length in bind(fd, pointer, socklen_t(length)) }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let error = failure(endpoint, "bind")
            close(fd)
            throw error
        }
        return fd
    }

    /// Whether `fd` is a socket that listens (a descriptor received in a handover is checked).
    static func isListening(_ fd: CInt) -> Bool {
        var accepting: CInt = 0
        var length = socklen_t(MemoryLayout<CInt>.size)
        return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting == 1
    }

    private static func isAnswering(_ path: String) -> Bool {
        guard let address = try? SocketAddress(unixDomainSocketPath: path) else { return false }
        let probe = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        defer { close(probe) }
        return address.withSockAddr { pointer, length in connect(probe, pointer, socklen_t(length)) } == 0
    }

    private static func failure(_ endpoint: Endpoint, _ call: String) -> BatonError {
        BatonError(.io, "cannot listen on \(endpoint): \(call): \(String(cString: strerror(errno)))")
    }
}
