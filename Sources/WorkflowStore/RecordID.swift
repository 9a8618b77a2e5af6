import Foundation

/// Time-ordered identifiers (UUID version 7 layout): ids sort by creation time, which keeps indexes compact
/// and lets pagination use the id as its cursor.
public enum RecordID {
    /// A new id whose first 48 bits are the milliseconds since 1970 of `now`.
    public static func make(now: Date) -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        for i in 0..<6 { bytes[i] = UInt8((ms >> (40 - 8 * UInt64(i))) & 0xff) }
        var rng = SystemRandomNumberGenerator()
        let random = rng.next() as UInt64
        let more = rng.next() as UInt16
        for i in 0..<8 { bytes[6 + i] = UInt8((random >> (8 * UInt64(i))) & 0xff) }
        bytes[14] = UInt8(more & 0xff)
        bytes[15] = UInt8(more >> 8)
        bytes[6] = (bytes[6] & 0x0f) | 0x70
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The id of item `index` of a `foreach` whose items share `base` (a ``make(now:)`` id): its last 8 hex digits
    /// become the index, so a parent finds any item's run without storing one id per item.
    public static func item(base: String, index: Int) -> String {
        let hex = String(UInt32(truncatingIfNeeded: index), radix: 16)
        return String(base.prefix(28)) + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Whether `text` has the shape of an id this type makes (36 characters, lowercase hex and dashes), so callers
    /// can skip an id lookup that cannot succeed.
    public static func looksLikeID(_ text: String) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 36 else { return false }
        for (i, c) in utf8.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard c == UInt8(ascii: "-") else { return false }
            } else {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c) else { return false }
            }
        }
        return true
    }
}
