import BatonCore
import Foundation

/// TranslateApp's migrations (Examples/translate/migrations) and OpenAPI documents
/// (Examples/translate/openapi/RELEASE.yaml), found from the working directory and from the
/// executable upwards, so `baton demo` works from the checkout and from `.build/…`.
public enum TranslateExamples {
    public static let release54 = "54_segment_words.json"

    public static func openapi(release: String) throws -> String {
        ((try migrations()) as NSString).deletingLastPathComponent + "/openapi/\(release).yaml"
    }

    public static func migrations() throws -> String {
        let relative = "Examples/translate/migrations"
        let candidates = [FileManager.default.currentDirectoryPath] + BuiltProducts.directories(levels: 6)
        for candidate in candidates where FileManager.default.fileExists(atPath: "\(candidate)/\(relative)/\(release54)") {
            return "\(candidate)/\(relative)"
        }
        throw BatonError(.notFound, "\(relative)/\(release54) not found from \(FileManager.default.currentDirectoryPath); run from the Baton checkout")
    }
}
