import Foundation

/// A JSON value: the currency of workflow inputs, step outputs, configs and templates.
///
/// Numbers are stored as `Double`; integral values are encoded without a fraction, so `200` stays `200`.
/// Integers beyond 2^53 lose precision, as in JavaScript: pass such identifiers as strings.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value at `key` when this is an object, else `nil`.
    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var isNull: Bool { self == .null }

    /// The JSON type name used in error messages (`object`, `array`, `string`, `number`, `boolean`, `null`).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Truthiness used by `when`, `&&`, `||` and `!`: null, false, 0, "" and empty containers are false.
    public var isTruthy: Bool {
        switch self {
        case .null: false
        case .bool(let b): b
        case .number(let n): n != 0 && !n.isNaN
        case .string(let s): !s.isEmpty
        case .array(let a): !a.isEmpty
        case .object(let o): !o.isEmpty
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n):
            if n.rounded() == n, abs(n) < 9.007_199_254_740_992e15 {
                try container.encode(Int64(n))
            } else {
                try container.encode(n)
            }
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue {
    /// Parses JSON text. Throws ``JSONSyntaxError`` (with line and column) on malformed input.
    public static func parse(_ data: Data) throws(JSONSyntaxError) -> JSONValue {
        do {
            return try data.withUnsafeBytes { raw in
                try JSONCodec.parse(raw.bindMemory(to: UInt8.self))
            }
        } catch let error as JSONSyntaxError {
            throw error
        } catch {
            throw JSONSyntaxError(message: "\(error)", line: 1, column: 1)
        }
    }

    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        var text = text
        do {
            return try text.withUTF8 { bytes in try JSONCodec.parse(bytes) }
        } catch let error as JSONSyntaxError {
            throw error
        } catch {
            throw JSONSyntaxError(message: "\(error)", line: 1, column: 1)
        }
    }

    /// Canonical JSON (sorted keys, no whitespace): equal values give equal bytes.
    public func canonicalData() -> Data {
        Data(canonicalBytes())
    }

    public func canonicalString() -> String {
        String(decoding: canonicalBytes(), as: UTF8.self)
    }

    private func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        JSONCodec.write(self, into: &out)
        return out
    }

    /// The text used when a value is interpolated into a longer string: strings as-is, others as canonical JSON.
    public var interpolationText: String {
        switch self {
        case .string(let s): s
        case .null: "null"
        default: canonicalString()
        }
    }
}
