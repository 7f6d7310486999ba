import OpenAPIKit

/// A document as compared: resolved, with the notes of what `DocumentPreparer` repaired.
public struct LoadedDocument {
    public var document: DereferencedDocument
    public var notes: [Finding]
}
