@testable import BatonProbe
import NIOHTTP1
import Testing

/// A virtual user's browser parts: the cookie jar and which references of a page it fetches.
@Suite struct VirtualUserTests {
    @Test func theCookieJarKeepsAndRemovesCookiesAsRFC6265Says() {
        let user = VirtualUser(name: "u")
        user.absorb(HTTPHeaders([("set-cookie", "session=abc; Path=/; HttpOnly"), ("set-cookie", "baton-release=5.3; Path=/")]))
        #expect(user.cookieHeader == "session=abc; baton-release=5.3")
        // Replaced in place of the old one, later in the order.
        user.absorb(HTTPHeaders([("set-cookie", "session=def")]))
        #expect(user.cookieHeader == "baton-release=5.3; session=def")
        // Max-Age of 0 or less, or an Expires in the past, removes; Max-Age wins over Expires.
        user.absorb(HTTPHeaders([("set-cookie", "session=; Max-Age=0")]))
        user.absorb(HTTPHeaders([("set-cookie", "a=1; Max-Age=-1"), ("set-cookie", "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT")]))
        user.absorb(HTTPHeaders([("set-cookie", "c=3; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), ("set-cookie", "d=; Path=/")]))
        #expect(user.cookieHeader == "baton-release=5.3; c=3; d=")
        // No name: ignored.
        user.absorb(HTTPHeaders([("set-cookie", "=x"), ("set-cookie", "no-equals-sign")]))
        #expect(user.cookieHeader == "baton-release=5.3; c=3; d=")
        user.newSession()
        #expect(user.cookieHeader == nil)
    }

    @Test func aPageLoadFetchesItsOwnScriptsAndStyleSheetsOnly() {
        let page = """
            <html><head><link rel="stylesheet" href="/assets/app.1.css"><link rel="icon" href="/favicon.ico">
            <script src="//cdn.example/x.js"></script><SCRIPT type="module" src="/assets/app.2.js"></SCRIPT></head>
            <body><a href="/logout">log out</a><img src="/logo.png"></body></html>
            """
        #expect(Probe.assets(in: page) == ["/assets/app.2.js", "/assets/app.1.css"])
    }
}
