/// The one error type Baton's commands report: a stable code, a one-line message that names
/// what was wrong and what was expected, and the underlying error when there is one.
public struct BatonError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidArgument, invalidConfiguration, notFound, conflict, timeout, unavailable, io, protocolError
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        public static let invalidArgument = Code(.invalidArgument)
        public static let invalidConfiguration = Code(.invalidConfiguration)
        public static let notFound = Code(.notFound)
        public static let conflict = Code(.conflict)
        public static let timeout = Code(.timeout)
        public static let unavailable = Code(.unavailable)
        public static let io = Code(.io)
        public static let protocolError = Code(.protocolError)

        public var description: String { base.rawValue }
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        if let underlying { return "\(message) (\(underlying))" }
        return message
    }
}
