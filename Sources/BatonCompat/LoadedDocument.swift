import OpenAPIKit

/// A document as compared: its structure as OpenAPIKit resolved it, its schemas, and the notes
/// of what `DocumentPreparer` repaired. Unchecked Sendable: OpenAPIKit's resolved values are
/// immutable structs it does not mark Sendable, and `SchemaSource` says why it may cross.
public struct LoadedDocument: @unchecked Sendable {
    public var document: DereferencedDocument
    /// OpenAPIKit's resolved document leaves webhooks out.
    public var webhooks: [(name: String, item: DereferencedPathItem)]
    public var schemas: SchemaSource
    public var notes: [Finding]
}
