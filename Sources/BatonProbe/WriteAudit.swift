import NIOConcurrencyHelpers

/// Writes the application acknowledged, each with its token and where to read it back.
public final class WriteAudit: Sendable {
    public struct Write: Sendable, Equatable {
        public var token: String
        public var readBack: String
    }

    private let acknowledged = NIOLockedValueBox<[Write]>([])

    public init() {}

    public func acknowledge(_ write: Write) {
        acknowledged.withLockedValue { $0.append(write) }
    }

    public var writes: [Write] { acknowledged.withLockedValue { $0 } }
}
