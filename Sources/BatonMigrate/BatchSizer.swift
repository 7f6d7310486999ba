import BatonCore

/// The size of the next backfill batch, from how long the last one took: rows per batch grow or
/// shrink so a batch lasts about `target` (at most doubling or halving per batch, within
/// `bounds`). Long batches hold their rows' locks longer, short ones pay the per-batch round
/// trips more often. With no target the size stays as given. Pure, so it is tested alone.
struct BatchSizer: Sendable, Equatable {
    static let bounds = 100...200_000

    private(set) var size: Int
    let target: Duration?

    /// A fixed size is kept as given; an adaptive one starts within `bounds`.
    init(size: Int, target: Duration?) {
        self.size = target == nil ? max(size, 1) : min(max(size, Self.bounds.lowerBound), Self.bounds.upperBound)
        self.target = target
    }

    /// A batch of `rows` rows took `took`.
    mutating func record(rows: Int, took: Duration) {
        guard let target, target > .zero else { return }
        let next: Int
        if rows == 0 || took <= .zero {
            next = size * 2
        } else {
            let perRow = took.seconds / Double(rows)
            next = Int((target.seconds / perRow).rounded())
        }
        size = min(max(next, size / 2, Self.bounds.lowerBound), size * 2, Self.bounds.upperBound)
    }
}
