/// The same rules for JSON Schema message definitions (queue and event payloads), with producer
/// and consumer in place of client and server: backward = a consumer on NEW reading what a
/// producer on OLD wrote (messages already queued, or producers not yet upgraded); forward = a
/// consumer still on OLD reading what a producer on NEW writes.
public enum MessageSchemaCompat {
    public static func compare(old: SchemaShape, new: SchemaShape, name: String) -> [Finding] {
        var backward = SchemaCompat(location: "message", direction: .backward, operation: name,
                                    producer: "a producer on OLD", consumer: "a consumer on NEW", consumerIsServer: true, newIsConsumer: true)
        backward.compare(producer: old, consumer: new, pointer: "")
        var forward = SchemaCompat(location: "message", direction: .forward, operation: name,
                                   producer: "a producer on NEW", consumer: "a consumer on OLD", consumerIsServer: true, newIsConsumer: false)
        forward.compare(producer: new, consumer: old, pointer: "")
        return backward.findings + forward.findings
    }
}
