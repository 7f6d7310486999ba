import BatonCore
import Foundation
import NIOSSL
import Synchronization

/// One certificate chain and its private key, as PEM files.
public struct TLSCertificateFiles: Sendable, Equatable, CustomStringConvertible {
    public var certificate: String
    public var key: String

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }

    /// `CERT.pem,KEY.pem`, as `--tls-certificate` takes it.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw BatonError(.invalidArgument, "--tls-certificate '\(text)': expected CERT.pem,KEY.pem")
        }
        self.init(certificate: parts[0], key: parts[1])
    }

    public var description: String { "\(certificate),\(key)" }
}

/// The certificates the TLS listener serves: the first is the default, the others are chosen by
/// the name the client asks for (SNI, wildcards included). `reload()` reads the files again;
/// handshakes from then on use the new set, connections already open keep theirs.
public final class TLSCertificates: Sendable {
    /// A loaded chain, the names it is valid for, and its key.
    struct Identity: Sendable {
        var names: [String]
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var notValidAfter: Date
    }

    private struct Loaded: Sendable {
        var context: NIOSSLContext
        var identities: [Identity]
    }

    public let files: [TLSCertificateFiles]
    private let loaded: Mutex<Loaded>

    /// Loads every pair; throws a one-line error naming the file at the first that is missing,
    /// unreadable, expired, not yet valid or whose key does not fit.
    public init(files: [TLSCertificateFiles], now: Date = Date()) throws {
        guard !files.isEmpty else { throw BatonError(.invalidConfiguration, "--tls-listen needs at least one --tls-certificate CERT.pem,KEY.pem") }
        self.files = files
        loaded = Mutex(try Self.load(files, now: now))
    }

    /// The context new connections get.
    var context: NIOSSLContext { loaded.withLock { $0.context } }

    /// Reads the files again. On any error the certificates in use are kept and the error is
    /// thrown: a bad renewal never takes the listener down.
    public func reload(now: Date = Date()) throws {
        let fresh = try Self.load(files, now: now)
        loaded.withLock { $0 = fresh }
    }

    /// Names and expiry of each certificate in use, for the admin API and logs.
    public var summary: [(names: [String], notValidAfter: Date)] {
        loaded.withLock { $0.identities.map { ($0.names, $0.notValidAfter) } }
    }

    private static func load(_ files: [TLSCertificateFiles], now: Date) throws -> Loaded {
        let identities = try files.map { try identity($0, now: now) }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: identities[0].chain.map { .certificate($0) },
            privateKey: .privateKey(identities[0].key)
        )
        configuration.minimumTLSVersion = .tlsv12
        // TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's are fixed and all modern).
        configuration.cipherSuites = "ECDHE+AESGCM:ECDHE+CHACHA20"
        configuration.applicationProtocols = ["http/1.1"]
        if identities.count > 1 {
            let others = identities
            configuration.sslContextCallback = { hello, promise in
                promise.succeed(Self.override(for: hello.serverHostname, among: others))
            }
        }
        do {
            return Loaded(context: try NIOSSLContext(configuration: configuration), identities: identities)
        } catch {
            throw BatonError(.invalidConfiguration, "\(files[0]): cannot build a TLS context (\(error))")
        }
    }

    /// The first identity (after the default) valid for `hostname`; no change for the default's
    /// names, an unknown name or a client that sent none.
    static func override(for hostname: String?, among identities: [Identity]) -> NIOSSLContextConfigurationOverride {
        guard let hostname = hostname?.lowercased(), !identities[0].names.contains(where: { matches($0, hostname) }),
              let identity = identities.dropFirst().first(where: { $0.names.contains { matches($0, hostname) } })
        else { return .noChanges }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = identity.chain.map { .certificate($0) }
        override.privateKey = .privateKey(identity.key)
        return override
    }

    /// RFC 6125: a wildcard stands for exactly one whole leftmost label.
    static func matches(_ pattern: String, _ hostname: String) -> Bool {
        if pattern.hasPrefix("*.") {
            guard let dot = hostname.firstIndex(of: ".") else { return false }
            return hostname[hostname.index(after: dot)...] == pattern.dropFirst(2) && dot != hostname.startIndex
        }
        return pattern == hostname
    }

    private static func identity(_ files: TLSCertificateFiles, now: Date) throws -> Identity {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
        } catch {
            throw BatonError(.invalidConfiguration, "\(files.certificate): cannot read a PEM certificate chain (\(Self.reason(error, path: files.certificate)))")
        }
        guard let leaf = chain.first else {
            throw BatonError(.invalidConfiguration, "\(files.certificate): no certificate in the file; expected a PEM chain starting with the server's certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.key, format: .pem)
        } catch {
            throw BatonError(.invalidConfiguration, "\(files.key): cannot read a PEM private key (\(Self.reason(error, path: files.key)))")
        }
        let names = Self.names(of: leaf)
        let label = names.first ?? "this certificate"
        let notAfter = Date(timeIntervalSince1970: TimeInterval(leaf.notValidAfter))
        let notBefore = Date(timeIntervalSince1970: TimeInterval(leaf.notValidBefore))
        if notAfter <= now {
            throw BatonError(.invalidConfiguration, "\(files.certificate): the certificate for \(label) expired on \(notAfter.ISO8601Format()); renew it (an expired certificate is never served)")
        }
        if notBefore > now {
            throw BatonError(.invalidConfiguration, "\(files.certificate): the certificate for \(label) is not valid until \(notBefore.ISO8601Format()); check the clock or the certificate")
        }
        // The key must be the certificate's: BoringSSL checks when both are set on a context.
        var check = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(leaf)], privateKey: .privateKey(key))
        check.minimumTLSVersion = .tlsv12
        do {
            _ = try NIOSSLContext(configuration: check)
        } catch {
            throw BatonError(.invalidConfiguration, "\(files.key): this key does not belong to the certificate in \(files.certificate) (\(error))")
        }
        return Identity(names: names, chain: chain, key: key, notValidAfter: notAfter)
    }

    /// The DNS names the certificate is for, lowercased: its subject alternative names.
    private static func names(of certificate: NIOSSLCertificate) -> [String] {
        certificate._subjectAlternativeNames().compactMap { name -> String? in
            guard name.nameType == .dnsName else { return nil }
            return name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self).lowercased() }
        }
    }

    private static func reason(_ error: any Error, path: String) -> String {
        FileManager.default.isReadableFile(atPath: path) ? "\(error)" : "no readable file there"
    }
}
