import Foundation

/// Computes a schedule's fire times (milliseconds since 1970), applying its time zone and DST policies.
///
/// A cron expression is matched against local wall-clock time. Where the zone's clocks go back, a local time occurs
/// twice and the repeated-time policy picks the first, the last or both instants; where they go forward, a local time
/// does not occur and the skipped-time policy shifts it to the first instant after the gap (the moment clocks change)
/// or drops it. Interval and one-time schedules are instants and ignore the zone.
public struct ScheduleTiming: Sendable {
    public let spec: ScheduleSpec
    let anchor: Int64
    let zone: TimeZone

    init(spec: ScheduleSpec, anchor: Int64) {
        self.spec = spec
        self.anchor = spec.startAt ?? anchor
        self.zone = TimeZone(identifier: spec.timeZone) ?? TimeZone(secondsFromGMT: 0)!
    }

    /// The first fire time strictly after `t`, or nil when the schedule has no more.
    public func next(after t: Int64) -> Int64? {
        var t = t
        if let start = spec.startAt, t < start - 1 { t = start - 1 }
        let candidate: Int64?
        switch spec.trigger {
        case .once(let at): candidate = at > t ? at : nil
        case .interval(let period):
            if t < anchor {
                candidate = anchor
            } else {
                let (steps, overflow) = ((t - anchor) / period).addingReportingOverflow(1)
                candidate = overflow ? nil : anchor + steps * period
            }
        case .cron(let cron): candidate = nextCron(cron, after: t)
        }
        guard let candidate else { return nil }
        if let end = spec.endAt, candidate > end { return nil }
        return candidate
    }

    /// Fire times in `(after, until]`, at most `limit` of them.
    public func fires(after: Int64, until: Int64, limit: Int) -> [Int64] {
        var result: [Int64] = []
        var t = after
        while result.count < limit, let n = next(after: t), n <= until {
            result.append(n)
            t = n
        }
        return result
    }

    /// Offset of the zone from UTC at an instant, in seconds.
    func offset(_ seconds: Int64) -> Int64 {
        Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(seconds))))
    }

    private func nextCron(_ cron: CronExpression, after tMs: Int64) -> Int64? {
        // Whole seconds: the first instant strictly after tMs is at least floor(tMs / 1000) + 1 s... or the same second
        // when tMs is before it.
        let t = tMs >= 0 ? tMs / 1000 : (tMs - 999) / 1000
        let here = offset(t)
        let later = offset(t + 6 * 3600)
        let around = max(here, later, offset(t - 86_400), offset(t + 86_400))
        // Clocks going back within hours: local times before now's occur again after t.
        var wall = t + here - max(0, here - later)
        var best: Int64?
        var steps = 0
        while steps < 50_000, let w = cron.nextWallTime(atOrAfter: wall) {
            steps += 1
            if let best, w - around > best { break }
            for instant in instants(ofWall: w) where instant * 1000 > tMs {
                if best == nil || instant < best! { best = instant }
            }
            wall = w + 1
        }
        return best.map { $0 * 1000 }
    }

    /// The instants (seconds) a local wall-clock time stands for under the DST policies.
    func instants(ofWall w: Int64) -> [Int64] {
        let before = offset(w - 86_400)
        let after = offset(w + 86_400)
        if before == after {
            let i = w - before
            if offset(i) == before { return [i] }
            // A transition and its reversal within two days: not in any zone today; read it by the offset at i.
            let o = offset(i)
            return offset(w - o) == o ? [w - o] : []
        }
        var valid: [Int64] = []
        for o in [before, after] where offset(w - o) == o {
            valid.append(w - o)
        }
        valid.sort()
        switch valid.count {
        case 2:
            switch spec.repeatedTime {
            case .first: return [valid[0]]
            case .last: return [valid[1]]
            case .both: return valid
            }
        case 1: return valid
        default:
            guard spec.skippedTime == .shift else { return [] }
            // The gap: the first instant after the local time at which the new offset holds.
            var low = w - max(before, after)
            var high = w - min(before, after)
            while high - low > 1 {
                let mid = low + (high - low) / 2
                if offset(mid) == after { high = mid } else { low = mid }
            }
            return [high]
        }
    }

    /// The jitter of a fire (milliseconds): the same for the same schedule and fire time on every node.
    public func jitter(of fire: Int64) -> Int64 {
        guard spec.jitterSeconds > 0 else { return 0 }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in spec.id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        var f = UInt64(bitPattern: fire)
        for _ in 0..<8 {
            hash = (hash ^ (f & 0xff)) &* 0x100_0000_01b3
            f >>= 8
        }
        return Int64(hash % UInt64(spec.jitterSeconds * 1000))
    }

    /// The local wall-clock time of an instant in the schedule's zone, for previews (`2026-03-29T01:30:00+01:00`).
    public func localDescription(_ ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let o = offset(seconds)
        let c = CivilTime(seconds + o)
        let sign = o < 0 ? "-" : "+"
        let a = abs(o)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        func four(_ n: Int) -> String { String(repeating: "0", count: max(0, 4 - String(n).count)) + String(n) }
        return
            "\(four(c.year))-\(two(c.month))-\(two(c.day))T\(two(c.hour)):\(two(c.minute)):\(two(c.second))\(sign)\(two(Int(a / 3600))):\(two(Int(a % 3600 / 60)))"
    }
}
