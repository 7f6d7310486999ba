import BatonCore
import Testing

@Suite struct ParsingTests {
    @Test(arguments: [
        ("250ms", 250), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000), ("1.5s", 1_500), ("5", 5_000),
    ])
    func durations(text: String, milliseconds: Int64) {
        #expect(Duration(parsing: text)?.milliseconds == milliseconds)
    }

    @Test(arguments: ["", "s", "-1s", "abc", "10 parsecs", "nan", "1e300", "1e300s", "inf", "999999999h", "3651d"])
    func badDurations(text: String) {
        #expect(Duration(parsing: text) == nil)
    }

    @Test func endpoints() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:8080") == .tcp(host: "127.0.0.1", port: 8080))
        #expect(try Endpoint(parsing: ":9000") == .tcp(host: "127.0.0.1", port: 9000))
        #expect(try Endpoint(parsing: "[::1]:80") == .tcp(host: "::1", port: 80))
        #expect(try Endpoint(parsing: "unix:/run/x.sock") == .unix(path: "/run/x.sock"))
        #expect(Endpoint.tcp(host: "::1", port: 80).description == "[::1]:80")
    }

    @Test(arguments: ["localhost", "host:port", "host:70000", "unix:"])
    func badEndpoints(text: String) {
        #expect(throws: BatonError.self) { try Endpoint(parsing: text) }
    }

    @Test func byteSizes() {
        #expect(ByteSize.parse("64KiB") == 65_536)
        #expect(ByteSize.parse("1MiB") == 1_048_576)
        #expect(ByteSize.parse("10MB") == 10_000_000)
        #expect(ByteSize.parse("512") == 512)
        #expect(ByteSize.parse("lots") == nil)
        #expect(ByteSize.parse("-1KiB") == nil)
    }
}

@Suite struct RequestTargetTests {
    @Test func splitsPathAndDecodesQuery() {
        let target = RequestTarget("/backends/web1/drain?timeout=30s&note=a%20b&flag")
        #expect(target.path == "/backends/web1/drain")
        #expect(target.query == ["timeout": "30s", "note": "a b", "flag": ""])
        #expect(RequestTarget("/up") == RequestTarget("/up?"))
    }

    /// Pairs with an empty side once trapped the admin API (`/up?=`).
    @Test(arguments: ["/up?=", "/up?=&=", "/up?&&", "/up?=x", "/up?a==b", "/up?%", "/up?%zz=%"])
    func emptyAndOddQueryPairsParse(uri: String) {
        #expect(RequestTarget(uri).path == "/up")
    }

    @Test func emptyNamesAndValuesAreKept() {
        #expect(RequestTarget("/x?=v&a=").query == ["": "v", "a": ""])
    }
}
