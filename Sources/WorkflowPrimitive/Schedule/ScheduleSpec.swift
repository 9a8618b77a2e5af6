import Foundation

/// What a schedule starts and when: the part of a schedule its owner writes (its state is kept beside it).
///
/// Read from JSON with every problem reported at its JSON pointer; written back in the same shape
/// (``json``), defaults filled in, so a schedule read back shows exactly what governs it.
public struct ScheduleSpec: Sendable, Hashable {
    public enum Trigger: Sendable, Hashable {
        public var isCron: Bool {
            if case .cron = self { return true }
            return false
        }

        case cron(CronExpression)
        /// Every `milliseconds`, counted from the schedule's `start_at` (or its creation).
        case interval(milliseconds: Int64)
        /// Once, at this instant (milliseconds since 1970).
        case once(at: Int64)
    }

    /// A local time that occurs twice (clocks go back): run at the first, the last, or both.
    public enum RepeatedTimePolicy: String, Sendable, Hashable, CaseIterable { case first, last, both }
    /// A local time that does not occur (clocks go forward): run at the first valid instant after it, or not at all.
    public enum SkippedTimePolicy: String, Sendable, Hashable, CaseIterable { case shift, skip }
    /// Fire times that passed while no leader was up or the schedule was paused.
    public enum MissedPolicy: String, Sendable, Hashable, CaseIterable {
        case skip
        case runOnce = "run_once"
        case runAll = "run_all"
    }
    /// What a fire does when the schedule's previous run is still going.
    public enum OverlapPolicy: String, Sendable, Hashable, CaseIterable {
        case skip
        case bufferOne = "buffer_one"
        case allowAll = "allow_all"
        case cancelOther = "cancel_other"
    }

    public var id: String
    public var workflow: String
    public var version: String?
    public var input: JSONValue
    public var trigger: Trigger
    public var timeZone: String
    public var repeatedTime: RepeatedTimePolicy
    public var skippedTime: SkippedTimePolicy
    public var missed: MissedPolicy
    /// Missed fire times older than this are never run, whatever the policy.
    public var catchUpWindowSeconds: Int
    /// At most this many missed fire times run after an outage (the latest ones).
    public var maxCatchUpRuns: Int
    public var overlap: OverlapPolicy
    /// Each fire is delayed by a fixed pseudo-random part of this (the same for the same fire time on every node).
    public var jitterSeconds: Int
    public var startAt: Int64?
    public var endAt: Int64?
    public var description: String?

    public static let maxCatchUpWindowSeconds = 366 * 86_400
    public static let maxCatchUpRunsLimit = 1000
    public static let maxJitterSeconds = 3600
    public static let maxIntervalSeconds = 366 * 86_400

    /// Reads a schedule from its JSON form; `createdAt` anchors an interval without `start_at`.
    public static func parse(_ json: JSONValue, limits: WorkflowLimits = .default) throws -> ScheduleSpec {
        var reader = SpecReader(json)
        let spec = reader.read(limits: limits)
        if !reader.issues.isEmpty { throw ValidationError(issues: reader.issues) }
        return spec!
    }

    /// The JSON form, with every default written out.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "id": .string(id),
            "workflow": .string(workflow),
            "input": input,
            "overlap": .string(overlap.rawValue),
            "missed": .string(missed.rawValue),
            "catch_up_window_seconds": .number(Double(catchUpWindowSeconds)),
            "max_catch_up_runs": .number(Double(maxCatchUpRuns)),
            "jitter_seconds": .number(Double(jitterSeconds)),
        ]
        if let version { o["version"] = .string(version) }
        switch trigger {
        case .cron(let cron):
            o["cron"] = .string(cron.source)
            o["dialect"] = .string(cron.dialect.rawValue)
            o["time_zone"] = .string(timeZone)
            o["dst_repeated"] = .string(repeatedTime.rawValue)
            o["dst_skipped"] = .string(skippedTime.rawValue)
        case .interval(let ms): o["interval_seconds"] = .number(Double(ms) / 1000)
        case .once(let at): o["at"] = .string(ScheduleTime.format(at))
        }
        if let startAt { o["start_at"] = .string(ScheduleTime.format(startAt)) }
        if let endAt { o["end_at"] = .string(ScheduleTime.format(endAt)) }
        if let description { o["description"] = .string(description) }
        return .object(o)
    }
}

/// Instants on the wire: RFC 3339 with an offset or `Z`, with or without fractional seconds.
public enum ScheduleTime {
    private static let withFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let plain = Date.ISO8601FormatStyle()

    public static func parse(_ text: String) -> Int64? {
        guard text.utf8.count <= 64 else { return nil }
        guard let date = (try? withFraction.parse(text)) ?? (try? plain.parse(text)) else { return nil }
        let ms = date.timeIntervalSince1970 * 1000
        guard ms.isFinite, abs(ms) < 1e15 else { return nil }
        return Int64(ms.rounded())
    }

    public static func format(_ ms: Int64) -> String {
        Date(timeIntervalSince1970: Double(ms) / 1000).formatted(withFraction)
    }
}

private struct SpecReader {
    let json: JSONValue
    var issues: [ValidationIssue] = []

    init(_ json: JSONValue) { self.json = json }

    mutating func issue(_ key: String, _ message: String) {
        issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message))
    }

    mutating func string(_ key: String, max: Int = 200) -> String? {
        guard let value = json[key], !value.isNull else { return nil }
        guard let s = value.stringValue else {
            issue(key, "must be a string, got \(value.typeName)")
            return nil
        }
        guard s.utf8.count <= max else {
            issue(key, "is longer than \(max) bytes")
            return nil
        }
        return s
    }

    mutating func integer(_ key: String, range: ClosedRange<Int>) -> Int? {
        guard let value = json[key], !value.isNull else { return nil }
        guard let n = value.numberValue, n.rounded() == n, n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
            issue(key, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return Int(n)
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, _ type: T.Type, default value: T) -> T where T.RawValue == String {
        guard let s = string(key) else { return value }
        guard let v = T(rawValue: s) else {
            issue(key, "must be one of \(T.allCases.map { $0.rawValue }.joined(separator: ", "))")
            return value
        }
        return v
    }

    mutating func instant(_ key: String) -> Int64? {
        guard let s = string(key, max: 64) else { return nil }
        guard let ms = ScheduleTime.parse(s) else {
            issue(key, "must be an RFC 3339 time with a zone, such as 2026-12-01T09:00:00Z")
            return nil
        }
        return ms
    }

    mutating func read(limits: WorkflowLimits) -> ScheduleSpec? {
        guard case .object(let fields) = json else {
            issues.append(ValidationIssue(pointer: .root, message: "must be an object, got \(json.typeName)"))
            return nil
        }
        let known: Set<String> = [
            "id", "workflow", "version", "input", "cron", "dialect", "interval_seconds", "at", "time_zone", "dst_repeated",
            "dst_skipped", "missed", "catch_up_window_seconds", "max_catch_up_runs", "overlap", "jitter_seconds", "start_at",
            "end_at", "description",
        ]
        for key in fields.keys.sorted() where !known.contains(key) {
            issue(key, "is not a schedule field")
        }
        let id = string("id", max: 100)
        if let id, !ScheduleSpec.isValidID(id) {
            issue("id", "must be 1-100 characters of letters, digits, '.', '_' and '-', starting with a letter or digit")
        } else if id == nil, json["id"] == nil {
            issue("id", "is required")
        }
        let workflow = string("workflow", max: 200)
        if workflow == nil, json["workflow"] == nil { issue("workflow", "is required: the name of the workflow each fire starts") }
        let version = string("version", max: 100)
        var input = JSONValue.object([:])
        if let value = json["input"], !value.isNull {
            if case .object = value {
                input = value
                if value.canonicalString().utf8.count > limits.maxInputBytes {
                    issue("input", "is larger than \(limits.maxInputBytes) bytes")
                }
            } else {
                issue("input", "must be an object, got \(value.typeName)")
            }
        }
        let zone = string("time_zone", max: 64) ?? "UTC"
        if TimeZone(identifier: zone) == nil || zone.isEmpty {
            issue("time_zone", "'\(zone)' is not an IANA time zone such as Europe/London")
        }
        let dialect = choice("dialect", CronExpression.Dialect.self, default: .unix)
        var trigger: ScheduleSpec.Trigger?
        let kinds = ["cron", "interval_seconds", "at"].filter { json[$0] != nil && !(json[$0]!.isNull) }
        if kinds.count != 1 {
            issues.append(
                ValidationIssue(
                    pointer: .root,
                    message: kinds.isEmpty
                        ? "needs one of cron, interval_seconds or at" : "has \(kinds.joined(separator: " and ")); a schedule has exactly one of them"
                )
            )
        } else if let text = string("cron", max: 256) {
            do {
                trigger = .cron(try CronExpression(text, dialect: dialect))
            } catch {
                issue("cron", error.message)
            }
        } else if let seconds = json["interval_seconds"] {
            if let n = seconds.numberValue, n >= 1, n <= Double(ScheduleSpec.maxIntervalSeconds), (n * 1000).rounded() == n * 1000 {
                trigger = .interval(milliseconds: Int64(n * 1000))
            } else {
                issue("interval_seconds", "must be a number of seconds from 1 to \(ScheduleSpec.maxIntervalSeconds) (millisecond precision)")
            }
        } else if let at = instant("at") {
            trigger = .once(at: at)
        }
        if json["dialect"] != nil, let trigger, !trigger.isCron { issue("dialect", "only applies to cron schedules") }
        let startAt = instant("start_at")
        let endAt = instant("end_at")
        if let startAt, let endAt, endAt <= startAt { issue("end_at", "must be after start_at") }
        let spec = ScheduleSpec(
            id: id ?? "",
            workflow: workflow ?? "",
            version: version,
            input: input,
            trigger: trigger ?? .interval(milliseconds: 1000),
            timeZone: zone,
            repeatedTime: choice("dst_repeated", ScheduleSpec.RepeatedTimePolicy.self, default: .first),
            skippedTime: choice("dst_skipped", ScheduleSpec.SkippedTimePolicy.self, default: .shift),
            missed: choice("missed", ScheduleSpec.MissedPolicy.self, default: .runOnce),
            catchUpWindowSeconds: integer("catch_up_window_seconds", range: 0...ScheduleSpec.maxCatchUpWindowSeconds) ?? 86_400,
            maxCatchUpRuns: integer("max_catch_up_runs", range: 1...ScheduleSpec.maxCatchUpRunsLimit) ?? 10,
            overlap: choice("overlap", ScheduleSpec.OverlapPolicy.self, default: .skip),
            jitterSeconds: integer("jitter_seconds", range: 0...ScheduleSpec.maxJitterSeconds) ?? 0,
            startAt: startAt,
            endAt: endAt,
            description: string("description", max: 1000)
        )
        if issues.isEmpty, case .cron = spec.trigger, spec.timing(anchor: 0).next(after: spec.startAt ?? 0) == nil && spec.endAt == nil {
            issue("cron", "never matches a date (such as 30 February)")
        }
        return spec
    }
}

extension ScheduleSpec {
    static func isValidID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, id.utf8.count <= 100,
            ("0"..."9").contains(first) || ("a"..."z").contains(first) || ("A"..."Z").contains(first)
        else { return false }
        return id.unicodeScalars.allSatisfy { c in
            ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-"
        }
    }

    /// The fire-time calculator of this spec; `anchor` (ms) is where an interval without `start_at` counts from.
    public func timing(anchor: Int64) -> ScheduleTiming {
        ScheduleTiming(spec: self, anchor: anchor)
    }
}
