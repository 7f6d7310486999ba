import Foundation

/// Which Baton this is: the release number, set here and nowhere else, and the commit it was
/// built from when that is known.
public enum BatonVersion {
    public static let number = "0.15.0"

    /// Stamped into `BuildStamp` by scripts/dist; for a build inside a git checkout (a
    /// `.build` directory beside `.git`), read from the checkout.
    public static let commit: String? = BuildStamp.commit ?? checkoutCommit()

    /// `0.15.0 (1a2b3c4d5e6f)`
    public static var description: String { commit.map { "\(number) (\($0.prefix(12)))" } ?? number }

    /// The commit checked out in the repository whose `.build` holds this executable.
    static func checkoutCommit() -> String? {
        guard let executable = try? BuiltProducts.currentExecutable(),
              let range = executable.range(of: "/.build/") else { return nil }
        let git = String(executable[..<range.lowerBound]) + "/.git"
        guard let head = try? String(contentsOfFile: git + "/HEAD", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        guard head.hasPrefix("ref: ") else { return head.count == 40 ? head : nil }
        let ref = String(head.dropFirst(5))
        if let loose = try? String(contentsOfFile: git + "/" + ref, encoding: .utf8) {
            return loose.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // A packed ref: "SHA refs/heads/main".
        let packed = (try? String(contentsOfFile: git + "/packed-refs", encoding: .utf8)) ?? ""
        return packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }.map { String($0.prefix(40)) }
    }
}
