/// The commit a shipped binary was built from. scripts/dist writes it over the zeros of `slot`
/// in the binary it ships (same length, found by its marker), so stamping needs no source
/// change and no rebuild; an unstamped binary keeps the zeros.
enum BuildStamp {
    static var commit: String? {
        let hex = slot().dropFirst(marker.count)
        return hex.allSatisfy { $0 == "0" } ? nil : String(hex)
    }

    static let marker = "@@baton-commit@@"

    /// Not optimised, so the compiler cannot fold the literal: the bytes are read as they are
    /// in the file.
    @inline(never) @_optimize(none)
    static func slot() -> String { "@@baton-commit@@0000000000000000000000000000000000000000" }
}
