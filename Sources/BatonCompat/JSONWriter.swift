import Foundation

/// JSON text of the values `OpenAPILoader.object` produces, for OpenAPIKit's decoder. Written
/// here because Foundation's JSONSerialization took a fifth of the time of a big comparison.
/// Keys are sorted, so when OpenAPIKit refuses a document with several faults it names the
/// same one every run; a value JSON cannot hold (infinity,
/// NaN, a date) is written as null or as its description.
enum JSONWriter {
    static func data(_ value: Any) -> Data {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(1 << 16)
        write(value, into: &bytes)
        return Data(bytes)
    }

    private static func write(_ value: Any, into bytes: inout [UInt8]) {
        switch value {
        case let map as [String: Any]:
            bytes.append(UInt8(ascii: "{"))
            var first = true
            for (key, inner) in map.sorted(by: { $0.key < $1.key }) {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                string(key, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                write(inner, into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        case let list as [Any]:
            bytes.append(UInt8(ascii: "["))
            for (index, inner) in list.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                write(inner, into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case let text as String:
            string(text, into: &bytes)
        case is NSNull:
            bytes += "null".utf8
        default:
            if let flag = SchemaSource.bool(value) {
                bytes += (flag ? "true" : "false").utf8
            } else if let integer = value as? Int, type(of: value) == Int.self {
                bytes += String(integer).utf8
            } else if let number = SchemaSource.number(value) {
                bytes += (number.isFinite ? SchemaSource.describe(value) : "null").utf8
            } else {
                string("\(value)", into: &bytes)
            }
        }
    }

    private static func string(_ text: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += #"\""#.utf8
            case UInt8(ascii: "\\"): bytes += #"\\"#.utf8
            case UInt8(ascii: "\n"): bytes += #"\n"#.utf8
            case UInt8(ascii: "\r"): bytes += #"\r"#.utf8
            case UInt8(ascii: "\t"): bytes += #"\t"#.utf8
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += #"\u00"#.utf8
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
