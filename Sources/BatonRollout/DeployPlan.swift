/// What `baton deploy RELEASE` would do, in order, or why it would refuse to start.
public struct DeployPlan: Sendable, Equatable {
    /// The first line says what is deployed from what; each later one is a step.
    public var steps: [String]
    /// Why the deploy would be refused before it changes anything; empty when it can go ahead.
    public var refusals: [String]

    public var isRefused: Bool { !refusals.isEmpty }

    /// The plan as `baton plan` prints it.
    public var lines: [String] { steps + refusals.map { "REFUSED: \($0)" } }
}
