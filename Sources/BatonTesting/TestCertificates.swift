import BatonCore
import Foundation

/// Certificates for TLS tests, made by the `openssl` command: a throwaway CA that signs server
/// certificates for the names asked, valid now or (for the refusal tests) long expired.
public struct TestCertificates: Sendable {
    public let directory: String
    public let caCertificate: String
    private let caKey: String

    public static func makeCA(in directory: String) throws -> TestCertificates {
        let ca = TestCertificates(directory: directory, caCertificate: directory + "/ca.pem", caKey: directory + "/ca.key")
        try ca.openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=Baton Test CA", "-keyout", ca.caKey, "-out", ca.caCertificate])
        return ca
    }

    /// A certificate for `names` (the first is its CN; all are DNS subject alternative names)
    /// signed by the CA; `expired` dates it in 2020. Returns (certificate, key) paths.
    public func issue(_ file: String, names: [String], expired: Bool = false) throws -> (certificate: String, key: String) {
        let key = "\(directory)/\(file).key"
        let request = "\(directory)/\(file).csr"
        let certificate = "\(directory)/\(file).pem"
        try openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-subj", "/CN=\(names[0])", "-keyout", key, "-out", request])
        // `openssl ca` is the one subcommand of OpenSSL 3.0 that takes explicit dates.
        let database = "\(directory)/\(file).index"
        FileManager.default.createFile(atPath: database, contents: Data())
        let config = """
            [ca]
            default_ca = test
            [test]
            database = \(database)
            new_certs_dir = \(directory)
            serial = \(directory)/\(file).serial
            default_md = sha256
            policy = anything
            copy_extensions = none
            unique_subject = no
            [anything]
            commonName = supplied
            [server]
            subjectAltName = \(names.map { "DNS:\($0)" }.joined(separator: ","))
            basicConstraints = CA:FALSE
            keyUsage = digitalSignature
            extendedKeyUsage = serverAuth
            """
        try config.write(toFile: "\(directory)/\(file).cnf", atomically: true, encoding: .utf8)
        try "\(String(UInt32.random(in: 0x1000_0000...0x7FFF_FFFF), radix: 16))\n".write(toFile: "\(directory)/\(file).serial", atomically: true, encoding: .utf8)
        let dates = expired ? ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] : ["-days", "2"]
        try openssl(["ca", "-batch", "-notext", "-config", "\(directory)/\(file).cnf", "-extensions", "server",
                     "-cert", caCertificate, "-keyfile", caKey, "-in", request, "-out", certificate] + dates)
        return (certificate, key)
    }

    private func openssl(_ arguments: [String]) throws {
        let result = try ChildProcess.run(["/usr/bin/openssl"] + arguments)
        guard result.status == 0 else {
            throw BatonError(.io, "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.output)")
        }
    }
}
