/// An exchange that lasts as long as its client likes — a WebSocket tunnel, a server-sent event
/// stream. Its backend keeps a list of them so a drain can ask each to end at a clean boundary
/// (a close frame between frames, the end of an event) instead of waiting out the drain timeout
/// and cutting it. Called on the exchange's event loop.
protocol DrainableExchange: AnyObject {
    func endGracefully()
}
