/// Outbound user events the frontend sends down its pipeline so the connection-level
/// `HeaderTimeoutHandler`, which sits before the HTTP decoder, knows where a request stands.
enum ProxyConnectionEvent {
    /// A request head was decoded: the header timeout no longer applies.
    case requestHeadReceived
    /// The exchange is over; the connection is idle until the next request's first byte.
    case exchangeComplete
}
