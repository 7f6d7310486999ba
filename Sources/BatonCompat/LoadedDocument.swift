import OpenAPIKit

/// A document as compared: its structure as OpenAPIKit resolved it, its schemas, and the notes
/// of what `DocumentPreparer` repaired.
public struct LoadedDocument {
    public var document: DereferencedDocument
    /// OpenAPIKit's resolved document leaves webhooks out.
    public var webhooks: [(name: String, item: DereferencedPathItem)]
    public var schemas: SchemaSource
    public var notes: [Finding]
}
