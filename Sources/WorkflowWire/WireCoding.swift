import Foundation

/// How the API writes and the client reads the wire types. Every type spells its snake_case keys in its `CodingKeys`
/// (no key strategy: a strategy would rewrite the keys of user JSON inside `input` and `output` too); keys are
/// sorted, so bodies are stable.
public enum WireCoding {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func decoder() -> JSONDecoder { JSONDecoder() }

    /// Encodes a wire value (for a response body).
    public static func encode(_ value: some Encodable) throws -> Data { try encoder().encode(value) }

    /// Decodes a wire value (from a response body).
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T { try decoder().decode(type, from: data) }

    /// Times on the wire: RFC 3339 in UTC with milliseconds (`2026-11-25T18:31:06.123Z`).
    public static func time(_ date: Date) -> String { date.formatted(timeStyle) }

    public static func time(_ date: Date?) -> String? { date.map(time) }

    /// Reads a wire time back.
    public static func date(_ text: String) -> Date? { try? timeStyle.parse(text) }

    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
}

/// Items of a list the API pages through, with the key the list is sent under.
public protocol PageItem: Codable, Sendable {
    static var pageKey: String { get }
}

/// One page of a list, with the cursor of the next page (`null` on the last).
public struct Page<Item: PageItem>: Codable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        items = try container.decode([Item].self, forKey: Key(Item.pageKey))
        nextCursor = try container.decodeIfPresent(String.self, forKey: Key("next_cursor"))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(items, forKey: Key(Item.pageKey))
        if let nextCursor {
            try container.encode(nextCursor, forKey: Key("next_cursor"))
        } else {
            try container.encodeNil(forKey: Key("next_cursor"))
        }
    }
}
