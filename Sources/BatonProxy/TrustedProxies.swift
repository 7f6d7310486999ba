import BatonCore
import NIOCore

/// The peers (`--trusted-proxy CIDR`) whose `X-Forwarded-Host`/`-Proto` are believed.
public struct TrustedProxies: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        var address: [UInt8]
        var prefixLength: Int

        func contains(_ bytes: [UInt8]) -> Bool {
            guard bytes.count == address.count else { return false }
            var remaining = prefixLength
            for (a, b) in zip(address, bytes) where remaining > 0 {
                let bits = min(8, remaining)
                let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if a & mask != b & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    var networks: [Network] = []

    public static let none = TrustedProxies()

    public init() {}

    /// Parses "10.0.0.0/8", "192.168.1.10", "::1/128" and the like.
    public init(parsing cidrs: [String]) throws {
        for text in cidrs {
            let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let address = Self.bytes(String(parts[0])) else {
                throw BatonError(.invalidConfiguration, "--trusted-proxy \(text): expected an IP address or CIDR such as 10.0.0.0/8")
            }
            let maximum = address.count * 8
            let prefix = parts.count == 2 ? Int(parts[1]) : maximum
            guard let prefix, (0...maximum).contains(prefix) else {
                throw BatonError(.invalidConfiguration, "--trusted-proxy \(text): expected a prefix length from 0 to \(maximum)")
            }
            networks.append(Network(address: address, prefixLength: prefix))
        }
    }

    /// Whether a peer address (as `SocketAddress.ipAddress` prints it) is trusted.
    func contains(_ peer: String) -> Bool {
        guard !networks.isEmpty, let bytes = Self.bytes(peer) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    private static func bytes(_ text: String) -> [UInt8]? {
        guard let address = try? SocketAddress(ipAddress: text, port: 0) else { return nil }
        switch address {
        case .v4(let v4): return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6): return withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
        case .unixDomainSocket: return nil
        }
    }
}
