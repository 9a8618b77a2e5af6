/// A cron expression in one of two explicitly named dialects.
///
/// - ``Dialect/unix``: five fields, `minute hour day-of-month month day-of-week` (second 0).
/// - ``Dialect/seconds``: six fields with the seconds first, `second minute hour day-of-month month day-of-week`
///   (the original design's `0 */5 * * * *`).
///
/// A six-field expression is never guessed: some systems read the sixth field as seconds, others (Temporal) as a year.
/// Fields take `*`, `?` (day fields), numbers, `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, and month (`JAN`) and
/// weekday (`MON`) names; day-of-week runs 0–7 with both 0 and 7 meaning Sunday. As in Vixie cron, when both day
/// fields are restricted a day matches if either matches. Macros: `@yearly` (`@annually`), `@monthly`, `@weekly`,
/// `@daily` (`@midnight`), `@hourly`.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    public enum Dialect: String, Sendable, Hashable, CaseIterable {
        case unix
        case seconds
    }

    /// Bit sets of the allowed values of each field.
    public let seconds: UInt64
    public let minutes: UInt64
    public let hours: UInt64
    public let daysOfMonth: UInt64
    public let months: UInt64
    /// Bit 0 is Sunday, bit 6 Saturday.
    public let daysOfWeek: UInt64
    let domRestricted: Bool
    let dowRestricted: Bool
    public let source: String
    public let dialect: Dialect

    public var description: String { source }

    static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let monthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// Parses `text` in `dialect`; the error names the field and says what is wrong.
    public init(_ text: String, dialect: Dialect = .unix) throws(CronError) {
        guard text.utf8.count <= 256 else { throw CronError("a cron expression is at most 256 characters") }
        let trimmed = text.trimmingWhitespace()
        var fields = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        if fields.count == 1, fields[0].hasPrefix("@") {
            guard let expansion = Self.macros[fields[0].lowercased()] else {
                throw CronError("unknown macro \(fields[0]); use @yearly, @monthly, @weekly, @daily or @hourly (or an interval schedule)")
            }
            fields = expansion.split(separator: " ").map(String.init)
            if dialect == .seconds { fields.insert("0", at: 0) }
        }
        switch (dialect, fields.count) {
        case (.unix, 5): fields.insert("0", at: 0)
        case (.seconds, 6): break
        case (.unix, 6):
            throw CronError(
                "6 fields in the unix dialect, which has 5 (minute hour day month weekday); for seconds first set the dialect to 'seconds' (uwf has no year field)"
            )
        case (.unix, let n): throw CronError("\(n) fields; the unix dialect has 5: minute hour day-of-month month day-of-week")
        case (.seconds, let n): throw CronError("\(n) fields; the seconds dialect has 6: second minute hour day-of-month month day-of-week")
        }
        seconds = try Self.field(fields[0], name: "second", range: 0...59)
        minutes = try Self.field(fields[1], name: "minute", range: 0...59)
        hours = try Self.field(fields[2], name: "hour", range: 0...23)
        daysOfMonth = try Self.field(fields[3], name: "day-of-month", range: 1...31, allowQuestion: true)
        months = try Self.field(fields[4], name: "month", range: 1...12, names: Self.monthNames, nameBase: 1)
        var dow = try Self.field(fields[5], name: "day-of-week", range: 0...7, names: Self.dayNames, nameBase: 0, allowQuestion: true)
        if dow & (1 << 7) != 0 { dow = (dow | 1) & ~(1 << 7) }
        daysOfWeek = dow
        domRestricted = !(fields[3] == "*" || fields[3] == "?")
        dowRestricted = !(fields[5] == "*" || fields[5] == "?")
        source = trimmed
        self.dialect = dialect
    }

    private static func field(
        _ text: String,
        name: String,
        range: ClosedRange<Int>,
        names: [String] = [],
        nameBase: Int = 0,
        allowQuestion: Bool = false
    ) throws(CronError) -> UInt64 {
        if text == "?" {
            guard allowQuestion else { throw CronError("'?' is only allowed in the day fields, not in the \(name) field") }
            return Self.bits(range, step: 1)
        }
        var result: UInt64 = 0
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count <= 60 else { throw CronError("the \(name) field has too many list items") }
        for part in parts {
            guard !part.isEmpty else { throw CronError("the \(name) field '\(text)' has an empty list item") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronError("the \(name) field '\(part)' has more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s >= 1, s <= range.upperBound + 1 else {
                    throw CronError("the \(name) field '\(part)' has a step that is not a number from 1 to \(range.upperBound + 1)")
                }
                step = s
            }
            let base = pieces[0]
            var low: Int
            var high: Int
            if base == "*" {
                low = range.lowerBound
                high = range.upperBound
            } else {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else { throw CronError("the \(name) field '\(part)' is not a value or a range") }
                low = try value(bounds[0], name: name, range: range, names: names, nameBase: nameBase)
                high = bounds.count == 2 ? try value(bounds[1], name: name, range: range, names: names, nameBase: nameBase) : low
                if pieces.count == 2 && bounds.count == 1 { high = range.upperBound }  // `5/15` means 5-max/15
                guard low <= high else { throw CronError("the \(name) field's range '\(base)' runs backwards") }
            }
            result |= bits(low...high, step: step)
        }
        return result
    }

    private static func value(_ text: Substring, name: String, range: ClosedRange<Int>, names: [String], nameBase: Int) throws(CronError) -> Int {
        if let n = Int(text) {
            guard range.contains(n) else { throw CronError("the \(name) field's value \(n) is outside \(range.lowerBound)-\(range.upperBound)") }
            return n
        }
        if let index = names.firstIndex(of: text.uppercased()) { return index + nameBase }
        throw CronError("the \(name) field has '\(text)', which is not a number\(names.isEmpty ? "" : " or a name such as \(names[1])")")
    }

    private static func bits(_ range: ClosedRange<Int>, step: Int) -> UInt64 {
        var result: UInt64 = 0
        var v = range.lowerBound
        while v <= range.upperBound {
            result |= 1 << UInt64(v)
            v += step
        }
        return result
    }

    /// Whether a day matches both day fields (Vixie semantics: either, when both are restricted).
    func dayMatches(year: Int, month: Int, day: Int) -> Bool {
        let dom = daysOfMonth & (1 << UInt64(day)) != 0
        let dow = daysOfWeek & (1 << UInt64(CivilTime.weekday(year: year, month: month, day: day))) != 0
        if domRestricted && dowRestricted { return dom || dow }
        return dom && dow
    }

    /// The first wall-clock time at or after `from` (seconds of a naive, zone-less calendar) that matches, or nil if
    /// none does within `years` years.
    public func nextWallTime(atOrAfter from: Int64, years: Int = 8) -> Int64? {
        var t = CivilTime(from)
        let lastYear = t.year + years
        while t.year <= lastYear {
            if months & (1 << UInt64(t.month)) == 0 {
                guard let m = Self.next(months, after: t.month, limit: 12) else {
                    t = CivilTime(year: t.year + 1, month: 1, day: 1)
                    continue
                }
                t = CivilTime(year: t.year, month: m, day: 1)
                continue
            }
            if t.day > CivilTime.daysIn(year: t.year, month: t.month) || !dayMatches(year: t.year, month: t.month, day: t.day) {
                t = t.nextDay()
                continue
            }
            if hours & (1 << UInt64(t.hour)) == 0 {
                guard let h = Self.next(hours, after: t.hour, limit: 23) else {
                    t = t.nextDay()
                    continue
                }
                t.hour = h
                t.minute = 0
                t.second = 0
                continue
            }
            if minutes & (1 << UInt64(t.minute)) == 0 {
                guard let m = Self.next(minutes, after: t.minute, limit: 59) else {
                    t = t.nextHour()
                    continue
                }
                t.minute = m
                t.second = 0
                continue
            }
            if seconds & (1 << UInt64(t.second)) == 0 {
                guard let s = Self.next(seconds, after: t.second, limit: 59) else {
                    t = t.nextMinute()
                    continue
                }
                t.second = s
                continue
            }
            return t.seconds
        }
        return nil
    }

    /// The smallest member of `set` greater than `value`, up to `limit`.
    private static func next(_ set: UInt64, after value: Int, limit: Int) -> Int? {
        guard value < limit else { return nil }
        let masked = set & ~((1 << UInt64(value + 1)) - 1)
        guard masked != 0 else { return nil }
        let n = masked.trailingZeroBitCount
        return n <= limit ? n : nil
    }
}

public struct CronError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A proleptic Gregorian date and time without a zone, converted to and from seconds with integer arithmetic
/// (days-from-civil), so that evaluating schedules does not go through `Calendar`.
public struct CivilTime: Sendable, Hashable {
    public var year: Int
    public var month: Int
    public var day: Int
    public var hour: Int
    public var minute: Int
    public var second: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    public init(_ seconds: Int64) {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let rest = Int(seconds - Int64(days) * 86_400)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yoe + era * 400 + (m <= 2 ? 1 : 0), month: m, day: d, hour: rest / 3600, minute: rest % 3600 / 60, second: rest % 60)
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public var seconds: Int64 {
        Int64(Self.daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// 0 is Sunday.
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        let days = daysFromCivil(year: year, month: month, day: day)
        return ((days % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
    }

    static func daysIn(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    func nextDay() -> CivilTime {
        if day >= Self.daysIn(year: year, month: month) {
            return month == 12 ? CivilTime(year: year + 1, month: 1, day: 1) : CivilTime(year: year, month: month + 1, day: 1)
        }
        return CivilTime(year: year, month: month, day: day + 1)
    }

    func nextHour() -> CivilTime {
        hour == 23 ? nextDay() : CivilTime(year: year, month: month, day: day, hour: hour + 1)
    }

    func nextMinute() -> CivilTime {
        minute == 59 ? nextHour() : CivilTime(year: year, month: month, day: day, hour: hour, minute: minute + 1)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        while let c = s.last, c.isWhitespace { s.removeLast() }
        return String(s)
    }
}
