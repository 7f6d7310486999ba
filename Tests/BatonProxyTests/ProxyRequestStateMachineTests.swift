@testable import BatonProxy
import NIOCore
import NIOHTTP1
import Testing

@Suite struct ProxyRequestStateMachineTests {
    let policy = RetryPolicy(maxAttempts: 3, bufferLimit: 10)

    func head(_ method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: "/")
    }

    let okHead = HTTPResponseHead(version: .http1_1, status: .ok)

    @Test func simpleExchange() {
        var machine = ProxyRequestStateMachine(policy: policy)
        #expect(machine.requestHead(head()) == .selectBackend)
        #expect(machine.requestEnd() == .none)
        #expect(machine.backendConnected() == .sendRequest(head: head(), body: [], end: true, trailers: nil))
        #expect(machine.responseHead(okHead) == .forwardResponseHead(okHead))
        #expect(machine.responseBody(ByteBuffer(string: "hi")) == .forwardResponseBody(ByteBuffer(string: "hi")))
        #expect(machine.responseEnd() == .completeResponse(backendReusable: true))
        #expect(machine.state == .idle)
    }

    @Test func bodyBufferedWhileConnectingThenStreamed() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        #expect(machine.requestBody(ByteBuffer(string: "abc")) == .none)
        #expect(machine.backendConnected() == .sendRequest(head: head(.POST), body: [ByteBuffer(string: "abc")], end: false, trailers: nil))
        #expect(machine.requestBody(ByteBuffer(string: "def")) == .forwardBody(ByteBuffer(string: "def")))
        #expect(machine.requestEnd() == .forwardEnd(trailers: nil))
    }

    @Test func readsPauseWhenTheBufferIsFullBeforeConnecting() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        #expect(machine.wantsClientReads(backendWritable: true))
        _ = machine.requestBody(ByteBuffer(string: "0123456789"))
        #expect(!machine.wantsClientReads(backendWritable: true))
        _ = machine.backendConnected()
        #expect(machine.wantsClientReads(backendWritable: true))
        #expect(!machine.wantsClientReads(backendWritable: false))
    }

    @Test func connectFailureIsRetriedForAnyMethodThenGivesUp() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.requestBody(ByteBuffer(string: "abc"))
        _ = machine.requestEnd()
        #expect(machine.backendConnectFailed() == .retry(.connect))
        #expect(machine.backendConnectFailed() == .retry(.connect))
        guard case .respondWithError(let error, let close) = machine.backendConnectFailed() else {
            Issue.record("expected an error response")
            return
        }
        #expect(error.status == .badGateway)
        #expect(error.reason == "backend-unreachable")
        #expect(!close)
    }

    @Test func retryAfterConnectReplaysTheBody() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.requestBody(ByteBuffer(string: "abc"))
        _ = machine.backendConnectFailed()
        #expect(machine.backendConnected() == .sendRequest(head: head(.POST), body: [ByteBuffer(string: "abc")], end: false, trailers: nil))
    }

    @Test func brokenConnectionRetriesIdempotentRequestsWithTheirBody() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.PUT))
        _ = machine.requestBody(ByteBuffer(string: "abc"))
        _ = machine.backendConnected()
        _ = machine.requestBody(ByteBuffer(string: "de"))
        _ = machine.requestEnd()
        #expect(machine.backendFailed() == .retry(.afterSend))
        #expect(machine.backendConnected() == .sendRequest(head: head(.PUT), body: [ByteBuffer(string: "abc"), ByteBuffer(string: "de")], end: true, trailers: nil))
    }

    @Test func brokenConnectionDoesNotRetryPost() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        guard case .respondWithError(let error, _) = machine.backendFailed() else {
            Issue.record("expected an error response")
            return
        }
        #expect(error.reason == "backend-failed")
    }

    @Test func bodyLargerThanTheBufferIsNotReplayed() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.PUT))
        _ = machine.backendConnected()
        _ = machine.requestBody(ByteBuffer(string: "0123456789ab"))
        #expect(!machine.replayable)
        guard case .respondWithError(let error, let close) = machine.backendFailed() else {
            Issue.record("expected an error response")
            return
        }
        #expect(error.status == .badGateway)
        #expect(close, "the client is still sending a body that can no longer go anywhere")
    }

    @Test func failureAfterResponseHeadAborts() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head())
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        _ = machine.responseHead(okHead)
        #expect(machine.backendFailed() == .abort)
        #expect(machine.state == .closed)
    }

    @Test func attemptsAreBounded() {
        var machine = ProxyRequestStateMachine(policy: RetryPolicy(maxAttempts: 2, bufferLimit: 10))
        _ = machine.requestHead(head())
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        #expect(machine.backendFailed() == .retry(.afterSend))
        _ = machine.backendConnected()
        guard case .respondWithError = machine.backendFailed() else {
            Issue.record("expected an error after the last attempt")
            return
        }
        #expect(machine.attempts == 2)
    }

    @Test func earlyResponseDiscardsTheRestOfTheBody() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.backendConnected()
        _ = machine.responseHead(HTTPResponseHead(version: .http1_1, status: .payloadTooLarge))
        #expect(machine.responseEnd() == .completeResponse(backendReusable: false))
        #expect(machine.state == .discardingRequestBody)
        #expect(machine.requestBody(ByteBuffer(string: "more")) == .none)
        #expect(machine.requestEnd() == .requestBodyDiscarded)
        #expect(machine.state == .idle)
    }

    @Test func responseTimeoutBeforeHeadIs504AfterHeadAborts() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head())
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        let timeout = ProxyError.responseTimeout(.seconds(1))
        #expect(machine.responseTimedOut(timeout) == .respondWithError(timeout, closeConnection: false))

        var streaming = ProxyRequestStateMachine(policy: policy)
        _ = streaming.requestHead(head())
        _ = streaming.requestEnd()
        _ = streaming.backendConnected()
        _ = streaming.responseHead(okHead)
        #expect(streaming.responseTimedOut(timeout) == .abort)
    }

    @Test func holdTimeoutAndClientClose() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head())
        #expect(machine.clientClosed() == .abandonBackend)
        #expect(machine.holdTimedOut(.noBackend(after: .seconds(1))) == .none)
        #expect(machine.backendConnected() == .abandonBackend)

        var held = ProxyRequestStateMachine(policy: policy)
        _ = held.requestHead(head())
        _ = held.requestEnd()
        let error = ProxyError.noBackend(after: .seconds(30))
        #expect(held.holdTimedOut(error) == .respondWithError(error, closeConnection: false))
        #expect(held.state == .idle)
    }

    @Test func malformedRequestClosesTheConnection() {
        var machine = ProxyRequestStateMachine(policy: policy)
        #expect(machine.requestMalformed(.headersTooLarge) == .respondWithError(.headersTooLarge, closeConnection: true))
        #expect(machine.state == .closed)
    }

    @Test(arguments: [
        (HTTPMethod.GET, true), (.HEAD, true), (.OPTIONS, true), (.PUT, true), (.DELETE, true), (.POST, false), (.PATCH, false),
    ])
    func retryPolicy(method: HTTPMethod, retriedAfterSend: Bool) {
        let policy = RetryPolicy(maxAttempts: 3, bufferLimit: 10)
        #expect(policy.shouldRetry(method: method, failure: .connect, attempts: 1, replayable: true))
        #expect(policy.shouldRetry(method: method, failure: .afterSend, attempts: 1, replayable: true) == retriedAfterSend)
        #expect(!policy.shouldRetry(method: method, failure: .connect, attempts: 3, replayable: true))
        #expect(!policy.shouldRetry(method: method, failure: .connect, attempts: 1, replayable: false))
    }

    @Test func webSocketHandshakeBecomesATunnel() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(), upgrade: true)
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        let switching = HTTPResponseHead(version: .http1_1, status: .switchingProtocols)
        #expect(machine.responseHead(switching) == .startTunnel(switching))
        #expect(machine.state == .tunneling)
        #expect(machine.timeout == .none)
        #expect(!machine.wantsClientReads(backendWritable: true))
        #expect(machine.clientClosed() == .none)
    }

    @Test func a101NobodyAskedForIsABadGateway() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head())
        _ = machine.requestEnd()
        _ = machine.backendConnected()
        guard case .respondWithError(let error, _) = machine.responseHead(HTTPResponseHead(version: .http1_1, status: .switchingProtocols)) else {
            Issue.record("expected an error response")
            return
        }
        #expect(error.reason == "backend-protocol-error")
    }

    @Test func informationalResponsesPassWithoutEndingTheExchange() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.PUT))
        _ = machine.backendConnected()
        let continueHead = HTTPResponseHead(version: .http1_1, status: .continue)
        #expect(machine.responseHead(continueHead) == .forwardInformational(continueHead))
        #expect(machine.state == .forwarding)
        #expect(machine.requestBody(ByteBuffer(string: "x")) == .forwardBody(ByteBuffer(string: "x")))
        #expect(machine.responseHead(okHead) == .forwardResponseHead(okHead))
    }

    @Test func theClockThatRunsFollowsTheExchange() {
        var machine = ProxyRequestStateMachine(policy: policy)
        #expect(machine.timeout == .none)
        _ = machine.requestHead(head(.POST))
        #expect(machine.timeout == .none)  // the hold and the connect have their own
        _ = machine.backendConnected()
        #expect(machine.timeout == .requestBody)  // an upload that keeps moving is never cut
        _ = machine.requestEnd(trailers: HTTPHeaders([("checksum", "1")]))
        #expect(machine.timeout == .response)  // the response clock starts once the request is sent
        _ = machine.responseHead(okHead)
        #expect(machine.timeout == .response)
    }

    @Test func stalledUploadGets408AndTheConnectionCloses() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.backendConnected()
        let error = ProxyError.requestBodyTimeout(.seconds(1))
        #expect(machine.requestBodyTimedOut(error) == .respondWithError(error, closeConnection: true))
    }

    @Test func earlyResponseThenStalledBodyClosesTheClient() {
        var machine = ProxyRequestStateMachine(policy: policy)
        _ = machine.requestHead(head(.POST))
        _ = machine.backendConnected()
        _ = machine.responseHead(okHead)
        #expect(machine.responseEnd() == .completeResponse(backendReusable: false))
        #expect(machine.timeout == .requestBody)
        #expect(machine.requestBodyTimedOut(.requestBodyTimeout(.seconds(1))) == .closeClient)
    }

    @Test func trailersAreKeptForTheReplay() {
        var machine = ProxyRequestStateMachine(policy: policy)
        let trailers = HTTPHeaders([("checksum", "abc")])
        _ = machine.requestHead(head(.PUT))
        _ = machine.requestBody(ByteBuffer(string: "abc"))
        _ = machine.requestEnd(trailers: trailers)
        #expect(machine.backendConnected() == .sendRequest(head: head(.PUT), body: [ByteBuffer(string: "abc")], end: true, trailers: trailers))
        #expect(machine.backendFailed() == .retry(.afterSend))
        #expect(machine.backendConnected() == .sendRequest(head: head(.PUT), body: [ByteBuffer(string: "abc")], end: true, trailers: trailers))
    }
}
