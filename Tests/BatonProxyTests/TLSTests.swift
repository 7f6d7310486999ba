import BatonCore
import BatonProxy
import BatonTesting
import Foundation
import Testing

extension LiveProxyTests {
    /// TLS termination checked by real clients (curl, openssl s_client) against certificates a
    /// throwaway CA issues for each test.
    @Suite struct TLSTests {
        struct Setup {
            let ca: TestCertificates
            let proxy: LiveProxy
            let backend: TestBackend
            var tlsPort: Int { proxy.addresses.tls?.port ?? 0 }
            var redirectPort: Int { proxy.addresses.redirect?.port ?? 0 }

            /// curl through the HTTPS listener to `name`, verifying the certificate against the
            /// CA and the name: "STATUS BODY", or curl's error.
            func curl(_ name: String, _ path: String = "/echo", extra: [String] = []) async throws -> (status: Int32?, output: String) {
                let result = try await ChildProcess.run(
                    ["/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", ca.caCertificate, "--resolve", "\(name):\(tlsPort):127.0.0.1",
                     "-w", "\n%{http_code}"] + extra + ["https://\(name):\(tlsPort)\(path)"],
                    timeout: .seconds(20)
                )
                return (result.status, result.output + result.errors)
            }

            func stop() async throws {
                try await proxy.shutdown()
                await backend.stop()
            }
        }

        static func start(certificates: (TestCertificates) throws -> [TLSCertificateFiles]) async throws -> Setup {
            let directory = TemporaryDirectory.make(prefix: "baton-tls")
            let ca = try TestCertificates.makeCA(in: directory)
            let files = try certificates(ca)
            let backend = try await TestBackend.start(name: "web1")
            let proxy = try await LiveProxy.start {
                $0.tlsListen = .tcp(host: "127.0.0.1", port: 0)
                $0.tlsCertificates = files
                $0.redirectListen = .tcp(host: "127.0.0.1", port: 0)
            }
            _ = try await proxy.admin.add(name: backend.name, address: backend.address, timeout: .seconds(10))
            return Setup(ca: ca, proxy: proxy, backend: backend)
        }

        static func pair(_ issued: (certificate: String, key: String)) -> TLSCertificateFiles {
            TLSCertificateFiles(certificate: issued.certificate, key: issued.key)
        }

        @Test func servesHTTPSChoosingTheCertificateByNameAndTellsTheBackend() async throws {
            let setup = try await Self.start { ca in
                [Self.pair(try ca.issue("site", names: ["site.test"])), Self.pair(try ca.issue("api", names: ["api.test", "*.api.test"]))]
            }
            // curl verifies the chain and the name: each name gets the certificate made for it.
            for name in ["site.test", "api.test", "eu.api.test"] {
                let (status, output) = try await setup.curl(name)
                #expect(status == 0, "\(name): \(output)")
                #expect(output.hasSuffix("\n200"), "\(name): \(output)")
                #expect(output.contains(#""x-forwarded-proto":"https""#), "\(output)")
            }
            // A name no certificate has gets the default one, which curl rightly refuses.
            let (status, output) = try await setup.curl("other.test")
            #expect(status != 0)
            #expect(output.contains("SSL") || output.contains("certificate"), "\(output)")
            // The plain listener still says http.
            let plain = try await get("/echo", from: setup.proxy.endpoint)
            #expect(plain.bodyString.contains(#""x-forwarded-proto":"http""#))
            try await setup.stop()
        }

        @Test func refusesTLSBelow1_2AndOffersOnlyModernSuites() async throws {
            let setup = try await Self.start { ca in [Self.pair(try ca.issue("site", names: ["site.test"]))] }
            func sClient(_ arguments: [String]) async throws -> (status: Int32?, output: String) {
                let result = try await ChildProcess.run(
                    ["/usr/bin/openssl", "s_client", "-connect", "127.0.0.1:\(setup.tlsPort)", "-servername", "site.test"] + arguments,
                    timeout: .seconds(20)
                )
                return (result.status, result.output + result.errors)
            }
            let modern = try await sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"])
            #expect(modern.status == 0, "\(modern.output)")
            #expect(modern.output.contains("Protocol  : TLSv1.2"), "\(modern.output)")
            let tls13 = try await sClient(["-tls1_3"])
            #expect(tls13.output.contains("TLSv1.3"), "\(tls13.output)")
            // Level 0 lets the client offer TLS 1.1 and CBC suites: the proxy still refuses both.
            let old = try await sClient(["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
            #expect(old.status != 0)
            #expect(old.output.contains("Cipher is (NONE)"), "\(old.output)")
            let cbc = try await sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:AES128-SHA"])
            #expect(cbc.status != 0 && cbc.output.contains("Cipher is (NONE)"), "a CBC suite was accepted: \(cbc.output)")
            try await setup.stop()
        }

        @Test func redirectsPlainHTTPToTheHTTPSListenerAndRefusesForgedHosts() async throws {
            let setup = try await Self.start { ca in [Self.pair(try ca.issue("site", names: ["site.test"]))] }
            let redirect = Endpoint.tcp(host: "127.0.0.1", port: setup.redirectPort)
            let response = try await HTTP1Client.send(HTTPRequest(.POST, "/login?next=%2Fhome", headers: ["host": "site.test"], body: "x"), to: redirect)
            #expect(response.status == 308)
            #expect(response.headers.first(name: "location") == "https://site.test:\(setup.tlsPort)/login?next=%2Fhome")
            for host in ["evil.test@site.test", "site.test/evil", "", "site.test:80x", "[::1"] {
                let forged = try await HTTP1Client.send(HTTPRequest(.GET, "/", headers: ["host": host]), to: redirect)
                #expect(forged.status == 400, "Host \(host)")
                #expect(forged.headers.first(name: "location") == nil)
            }
            #expect(setup.backend.requestsServed == 0, "the redirect listener forwarded a request")
            try await setup.stop()
        }

        @Test func reloadSwapsCertificatesWithoutDroppingOpenConnectionsAndKeepsThemOnABadRenewal() async throws {
            let directory = TemporaryDirectory.make(prefix: "baton-tls-files")
            var setup: Setup!
            setup = try await Self.start { ca in
                let first = try ca.issue("first", names: ["site.test"])
                try FileManager.default.copyItem(atPath: first.certificate, toPath: directory + "/live.pem")
                try FileManager.default.copyItem(atPath: first.key, toPath: directory + "/live.key")
                return [TLSCertificateFiles(certificate: directory + "/live.pem", key: directory + "/live.key")]
            }
            // A client connection kept open across the reload.
            let session = try OpenSSLSession(port: setup.tlsPort, serverName: "site.test")
            #expect(try session.request("GET /echo HTTP/1.1\r\nHost: site.test\r\n\r\n").hasPrefix("HTTP/1.1 200"))
            #expect(try await setup.curl("new.site.test").status != 0)

            // The renewal adds a name; files are replaced as certbot does, then reloaded.
            let renewed = try setup.ca.issue("renewed", names: ["site.test", "new.site.test"])
            try Self.replace(directory + "/live.pem", with: renewed.certificate)
            try Self.replace(directory + "/live.key", with: renewed.key)
            let reloaded = try await setup.proxy.admin.certificates(reload: true)
            #expect(reloaded.certificates.first?.names == ["site.test", "new.site.test"])
            #expect(try await setup.curl("new.site.test").output.hasSuffix("\n200"))
            #expect(try session.request("GET /echo HTTP/1.1\r\nHost: site.test\r\n\r\n").hasPrefix("HTTP/1.1 200"), "the open connection was dropped")

            // A bad renewal (expired, or a key of another certificate) is refused; the good one stays.
            let expired = try setup.ca.issue("expired", names: ["site.test", "new.site.test"], expired: true)
            try Self.replace(directory + "/live.pem", with: expired.certificate)
            try Self.replace(directory + "/live.key", with: expired.key)
            await #expect(throws: BatonError.self) { _ = try await setup.proxy.admin.certificates(reload: true) }
            try Self.replace(directory + "/live.pem", with: renewed.certificate)
            await #expect(throws: BatonError.self) { _ = try await setup.proxy.admin.certificates(reload: true) }
            #expect(try await setup.curl("new.site.test").output.hasSuffix("\n200"))
            session.close()
            try await setup.stop()
        }

        @Test func anExpiredCertificateOrAKeyThatDoesNotFitIsRefusedAtStartWithTheFileNamed() async throws {
            let directory = TemporaryDirectory.make(prefix: "baton-tls-cli")
            let ca = try TestCertificates.makeCA(in: directory)
            let expired = try ca.issue("expired", names: ["old.test"], expired: true)
            let good = try ca.issue("good", names: ["good.test"])
            let other = try ca.issue("other", names: ["other.test"])
            let cases: [([String], String)] = [
                (["--tls-certificate", "\(expired.certificate),\(expired.key)"], "\(expired.certificate): the certificate for old.test expired on 2020-02-01"),
                (["--tls-certificate", "\(good.certificate),\(other.key)"], "\(other.key): this key does not belong to the certificate in \(good.certificate)"),
                (["--tls-certificate", "\(directory)/missing.pem,\(good.key)"], "\(directory)/missing.pem: cannot read a PEM certificate chain"),
                (["--tls-certificate", "\(good.key),\(good.key)"], "\(good.key): "),
                (["--tls-certificate", good.certificate], "expected CERT.pem,KEY.pem"),
                ([], "--tls-listen: needs at least one --tls-certificate"),
            ]
            for (arguments, message) in cases {
                let result = try BatonCLI.run(
                    ["proxy", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--state-file", directory + "/state.json", "--admin-socket", directory + "/admin.sock"] + arguments,
                    in: directory
                )
                #expect(result.status != 0, "\(arguments)")
                let lines = result.output.split(separator: "\n")
                #expect(lines.count == 1 && result.output.contains(message), "\(arguments): \(result.output)")
            }
        }

        static func replace(_ path: String, with source: String) throws {
            let temporary = path + ".new"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: source, toPath: temporary)
            guard rename(temporary, path) == 0 else { throw BatonError(.io, "rename \(temporary)") }
        }
    }
}

/// One TLS connection held open by `openssl s_client`, to send requests on over time.
final class OpenSSLSession: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()

    init(port: Int, serverName: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = ["s_client", "-quiet", "-connect", "127.0.0.1:\(port)", "-servername", serverName]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Writes `request` and reads until a whole response with a Content-Length body arrived
    /// (at most 10 s: the process is killed then, which ends the read).
    func request(_ request: String) throws -> String {
        input.fileHandleForWriting.write(Data(request.utf8))
        let watchdog = DispatchWorkItem { [process] in kill(process.processIdentifier, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 10, execute: watchdog)
        defer { watchdog.cancel() }
        var received = ""
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return received }
            received += String(decoding: chunk, as: UTF8.self)
            if let split = received.range(of: "\r\n\r\n") {
                let head = received[..<split.lowerBound].lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                if received.utf8.count - received[..<split.upperBound].utf8.count >= length { return received }
            }
        }
    }

    func close() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
