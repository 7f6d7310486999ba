import BatonCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a proxy hands the process replacing it (`baton proxy upgrade`), over a Unix socket:
/// its listening sockets as descriptors (SCM_RIGHTS), then this as JSON, and it waits for one
/// line back: "ready" once the new process serves, else why not.
struct Handover: Codable, Sendable {
    enum Role: String, Codable, Sendable {
        case proxy, tls, redirect, admin, adminTCP
    }

    /// Which descriptor (by its place in the message) is which listener.
    var listeners: [Role]
    /// The backend pool as it stands, health included.
    var backends: [PersistedBackend]
    /// Assets of earlier releases the proxy keeps.
    var assets: [AssetCache.Kept]
    /// The old process, for the new one's log.
    var pid: Int32

    /// The longest handover accepted; more is refused rather than allocated.
    static let maxPayload = 1 << 30

    // MARK: Wire

    /// Sends `descriptors` (duplicated into the peer by the kernel) and `payload`.
    static func send(descriptors: [CInt], payload: Data, on socket: CInt) throws {
        var marker: UInt8 = 0x48
        let space = controlSpace(count: descriptors.count)
        let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: MemoryLayout<Int>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
        let header = control.assumingMemoryBound(to: cmsghdr.self)
        header.pointee.cmsg_len = controlLength(count: descriptors.count)
        header.pointee.cmsg_level = SOL_SOCKET
        header.pointee.cmsg_type = CInt(SCM_RIGHTS)
        let data = control + align(MemoryLayout<cmsghdr>.size)
        for (index, fd) in descriptors.enumerated() { data.storeBytes(of: fd, toByteOffset: index * MemoryLayout<CInt>.size, as: CInt.self) }
        let sent = withUnsafeMutablePointer(to: &marker) { markerPointer -> Int in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(markerPointer), iov_len: 1)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                var message = msghdr()
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control
                message.msg_controllen = descriptors.isEmpty ? 0 : space
                return sendmsg(socket, &message, CInt(MSG_NOSIGNAL))
            }
        }
        guard sent == 1 else { throw BatonError(.io, "handover: sendmsg: \(String(cString: strerror(errno)))") }
        var length = UInt64(payload.count).bigEndian
        try writeAll(Data(bytes: &length, count: 8), to: socket)
        try writeAll(payload, to: socket)
    }

    /// Receives what `send` sent: at most `maxDescriptors` descriptors (close-on-exec) and the payload.
    static func receive(on socket: CInt, maxDescriptors: Int = 8) throws -> (descriptors: [CInt], payload: Data) {
        var marker: UInt8 = 0
        let space = controlSpace(count: maxDescriptors)
        let control = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: MemoryLayout<Int>.alignment)
        defer { control.deallocate() }
        control.initializeMemory(as: UInt8.self, repeating: 0, count: space)
        var message = msghdr()
        let received = withUnsafeMutablePointer(to: &marker) { markerPointer -> Int in
            var vector = iovec(iov_base: UnsafeMutableRawPointer(markerPointer), iov_len: 1)
            return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                message.msg_iov = vectorPointer
                message.msg_iovlen = 1
                message.msg_control = control
                message.msg_controllen = space
                return recvmsg(socket, &message, CInt(MSG_CMSG_CLOEXEC))
            }
        }
        let failure = received < 0 ? String(cString: strerror(errno)) : "end of stream"
        var descriptors: [CInt] = []
        if message.msg_controllen >= MemoryLayout<cmsghdr>.size {
            let header = control.assumingMemoryBound(to: cmsghdr.self).pointee
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == CInt(SCM_RIGHTS) {
                let count = (Int(header.cmsg_len) - align(MemoryLayout<cmsghdr>.size)) / MemoryLayout<CInt>.size
                let data = control + align(MemoryLayout<cmsghdr>.size)
                for index in 0..<max(0, count) { descriptors.append(data.load(fromByteOffset: index * MemoryLayout<CInt>.size, as: CInt.self)) }
            }
        }
        // Whatever arrived is closed on any failure from here.
        do {
            guard received == 1, marker == 0x48 else { throw BatonError(.io, "handover: expected the listening sockets first, got \(failure)") }
            if message.msg_flags & CInt(MSG_CTRUNC) != 0 {
                throw BatonError(.io, "handover: more than \(maxDescriptors) descriptors were sent")
            }
            let lengthBytes = try readExactly(8, from: socket)
            let length = lengthBytes.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)) }
            guard length <= UInt64(maxPayload) else {
                throw BatonError(.io, "handover: a \(length)-byte state is more than the \(maxPayload) accepted")
            }
            return (descriptors, try readExactly(Int(length), from: socket))
        } catch {
            descriptors.forEach { close($0) }
            throw error
        }
    }

    static func writeAll(_ data: Data, to socket: CInt) throws {
        try data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.send(socket, bytes.baseAddress! + offset, bytes.count - offset, CInt(MSG_NOSIGNAL))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw BatonError(.io, "handover: write: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    static func readExactly(_ count: Int, from socket: CInt) throws -> Data {
        var data = Data(count: count)
        var offset = 0
        try data.withUnsafeMutableBytes { bytes in
            while offset < count {
                let read = recv(socket, bytes.baseAddress! + offset, count - offset, 0)
                if read < 0 && errno == EINTR { continue }
                if read < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw BatonError(.timeout, "handover: the peer said nothing in time") }
                guard read > 0 else { throw BatonError(.io, "handover: the peer went away after \(offset) of \(count) bytes\(read < 0 ? " (\(String(cString: strerror(errno))))" : "")") }
                offset += read
            }
        }
        return data
    }

    /// One line (up to 4 KiB), without its newline.
    static func readLine(from socket: CInt) throws -> String {
        var line = Data()
        while line.count < 4096 {
            let byte = try readExactly(1, from: socket)
            if byte[0] == 0x0A { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Makes reads and writes on `socket` give up after `timeout`.
    static func setTimeout(_ timeout: Duration, on socket: CInt) {
        let (seconds, attoseconds) = timeout.components
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    // CMSG_ALIGN, CMSG_LEN and CMSG_SPACE, which are macros Swift cannot import.
    private static func align(_ length: Int) -> Int {
        let word = MemoryLayout<Int>.size
        return (length + word - 1) & ~(word - 1)
    }

    private static func controlLength(count: Int) -> Int {
        align(MemoryLayout<cmsghdr>.size) + count * MemoryLayout<CInt>.size
    }

    private static func controlSpace(count: Int) -> Int {
        align(MemoryLayout<cmsghdr>.size) + align(count * MemoryLayout<CInt>.size)
    }
}
