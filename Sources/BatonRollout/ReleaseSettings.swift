import BatonCore

/// How a release is run and checked: baton.yml's `release` and `health` as they were when a
/// deployment of it started. The journal keeps them with each deployment, so rolling back to a
/// release (or resuming a deployment) runs it as it was deployed, not as today's baton.yml
/// would, which may describe only the newer release.
public struct ReleaseSettings: Sendable, Equatable, Codable {
    public var release: BatonConfig.Release
    public var health: BatonConfig.Health

    public init(_ config: BatonConfig) {
        release = config.release
        health = config.health
    }
}
