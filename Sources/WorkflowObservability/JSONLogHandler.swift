import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes each entry as one JSON object on one line of standard error: `time` (RFC 3339, UTC, milliseconds),
/// `level`, `message`, `logger`, then the metadata (`node`, `request_id`, `run`, `step`, `tenant`, `error`, ...) as
/// top-level fields. The engine and the API log ids, counts and errors, never payloads, header values or secrets.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String

    public init(label: String, level: Logger.Level = .info, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let extra = event.metadata { fields.merge(extra) { _, new in new } }
        var line = "{\"time\":\(Self.quote(Self.timestamp()))"
        line += ",\"level\":\(Self.quote(event.level.rawValue))"
        line += ",\"message\":\(Self.quote(event.message.description))"
        line += ",\"logger\":\(Self.quote(label))"
        for key in fields.keys.sorted() where !["time", "level", "message", "logger"].contains(key) {
            line += ",\(Self.quote(key)):\(Self.json(fields[key]!))"
        }
        line += "}\n"
        // One write per entry: lines of concurrent tasks never interleave.
        _ = line.withCString { pointer in write(2, pointer, strlen(pointer)) }
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): quote(s)
        case .stringConvertible(let c): quote(c.description)
        case .array(let items): "[" + items.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): "{" + d.keys.sorted().map { quote($0) + ":" + json(d[$0]!) }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (control characters escaped, so an entry is always one line).
    static func quote(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
                out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var time = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &time)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            time.tm_year + 1900,
            time.tm_mon + 1,
            time.tm_mday,
            time.tm_hour,
            time.tm_min,
            time.tm_sec,
            Int(now.tv_nsec / 1_000_000)
        )
    }
}
