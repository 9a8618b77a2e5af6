import Foundation
import Testing

@testable import WorkflowPrimitive

/// Schedule fire times: parsing, and the times themselves checked against an independent implementation
/// (`Tests/Reference/cron_reference.py`: Python's zoneinfo and a brute-force walk over every minute) over two and a
/// half years in zones with one-hour and thirty-minute DST shifts, in both hemispheres and without DST.
@Suite struct ScheduleTimingTests {
    static let from = ScheduleTime.parse("2026-01-01T00:00:00Z")!
    static let until = ScheduleTime.parse("2028-07-01T00:00:00Z")!

    struct Case: Codable {
        var cron: String
        var dialect: String
        var zone: String
        var repeated: String
        var skipped: String
        var from_ms: Int64
        var until_ms: Int64
    }

    static let cases: [Case] = [
        // London: 01:00-02:00 is skipped in March and repeated in October.
        ("30 1 * * *", "unix", "Europe/London", "first", "shift"),
        ("30 1 * * *", "unix", "Europe/London", "last", "skip"),
        ("30 1 * * *", "unix", "Europe/London", "both", "shift"),
        ("*/20 1,2 * * *", "unix", "America/New_York", "both", "shift"),
        ("*/20 1,2 * * *", "unix", "America/New_York", "first", "skip"),
        // Lord Howe moves its clocks by thirty minutes, at 02:00.
        ("15 2 * * *", "unix", "Australia/Lord_Howe", "first", "shift"),
        ("45 1 * * *", "unix", "Australia/Lord_Howe", "last", "shift"),
        ("0 */30 * * * *", "seconds", "Australia/Lord_Howe", "both", "shift"),
        ("@hourly", "unix", "Australia/Sydney", "first", "skip"),
        ("0 9 * * MON-FRI", "unix", "Asia/Kolkata", "first", "shift"),
        ("30 0 2 * * *", "seconds", "Europe/Berlin", "both", "shift"),
        ("0 12 13 * 5", "unix", "Europe/Berlin", "first", "shift"),
        ("0 0 29 2 *", "unix", "UTC", "first", "shift"),
        ("@daily", "seconds", "America/Sao_Paulo", "first", "shift"),
    ].map { Case(cron: $0.0, dialect: $0.1, zone: $0.2, repeated: $0.3, skipped: $0.4, from_ms: from, until_ms: until) }

    static func spec(_ c: Case) throws -> ScheduleSpec {
        try ScheduleSpec.parse([
            "id": "s", "workflow": "w", "cron": .string(c.cron), "dialect": .string(c.dialect), "time_zone": .string(c.zone),
            "dst_repeated": .string(c.repeated), "dst_skipped": .string(c.skipped),
        ])
    }

    /// python3 (its zoneinfo and the system's tz database) is the reference; without it the test is skipped, unless
    /// `UWF_REQUIRE_PYTHON_TOOLS=1` (`.ci/run`).
    static let pythonAvailable: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import zoneinfo; zoneinfo.ZoneInfo('Australia/Lord_Howe')"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()
    static var referenceEnabled: Bool { pythonAvailable || ProcessInfo.processInfo.environment["UWF_REQUIRE_PYTHON_TOOLS"] == "1" }

    @Test(.enabled(if: referenceEnabled)) func fireTimesAgreeWithAnIndependentImplementation() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Reference/cron_reference.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        stdin.fileHandleForWriting.write(try JSONEncoder().encode(Self.cases))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "the reference script failed")
        let expected = try JSONDecoder().decode([[Int64]].self, from: data)
        try #require(expected.count == Self.cases.count)
        for (c, reference) in zip(Self.cases, expected) {
            let timing = try Self.spec(c).timing(anchor: 0)
            let ours = timing.fires(after: c.from_ms, until: c.until_ms, limit: 100_000)
            #expect(!reference.isEmpty, "\(c.cron) in \(c.zone): the reference found no fires")
            if ours != reference {
                let missing = Set(reference).subtracting(ours).sorted().prefix(3).map(ScheduleTime.format)
                let extra = Set(ours).subtracting(reference).sorted().prefix(3).map(ScheduleTime.format)
                Issue.record("\(c.cron) (\(c.dialect)) in \(c.zone), \(c.repeated)/\(c.skipped): missing \(missing), extra \(extra)")
            }
        }
    }

    /// The DST policy by the example the docs give: 01:30 every day in London.
    @Test func theDocumentedLondonExample() throws {
        func fires(_ repeated: String, _ skipped: String, from: String, until: String) throws -> [String] {
            let spec = try Self.spec(
                Case(cron: "30 1 * * *", dialect: "unix", zone: "Europe/London", repeated: repeated, skipped: skipped, from_ms: 0, until_ms: 0)
            )
            let timing = spec.timing(anchor: 0)
            return timing.fires(after: ScheduleTime.parse(from)!, until: ScheduleTime.parse(until)!, limit: 10).map(ScheduleTime.format)
        }
        // 29 March 2026: clocks go from 01:00 to 02:00, so 01:30 does not happen.
        #expect(try fires("first", "shift", from: "2026-03-28T12:00:00Z", until: "2026-03-29T12:00:00Z") == ["2026-03-29T01:00:00.000Z"])
        #expect(try fires("first", "skip", from: "2026-03-28T12:00:00Z", until: "2026-03-29T12:00:00Z") == [])
        // 25 October 2026: clocks go from 02:00 back to 01:00, so 01:30 happens twice (00:30 and 01:30 UTC).
        #expect(try fires("first", "shift", from: "2026-10-24T12:00:00Z", until: "2026-10-25T12:00:00Z") == ["2026-10-25T00:30:00.000Z"])
        #expect(try fires("last", "shift", from: "2026-10-24T12:00:00Z", until: "2026-10-25T12:00:00Z") == ["2026-10-25T01:30:00.000Z"])
        #expect(
            try fires("both", "shift", from: "2026-10-24T12:00:00Z", until: "2026-10-25T12:00:00Z") == [
                "2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z",
            ]
        )
    }

    @Test func intervalsAndOneTimeSchedules() throws {
        let start = "2026-05-01T10:00:00Z"
        let every = try ScheduleSpec.parse(["id": "i", "workflow": "w", "interval_seconds": 90, "start_at": .string(start)])
        let t = ScheduleTime.parse(start)!
        #expect(every.timing(anchor: 0).fires(after: t - 1, until: t + 300_000, limit: 10) == [t, t + 90_000, t + 180_000, t + 270_000])
        // Counted from the anchor (its creation) without start_at.
        let anchored = try ScheduleSpec.parse(["id": "i", "workflow": "w", "interval_seconds": 60])
        #expect(anchored.timing(anchor: 1_000).next(after: 61_500) == 121_000)
        let once = try ScheduleSpec.parse(["id": "o", "workflow": "w", "at": "2026-12-24T09:00:00+01:00"])
        #expect(once.timing(anchor: 0).fires(after: 0, until: .max, limit: 5) == [ScheduleTime.parse("2026-12-24T08:00:00Z")!])
        let ended = try ScheduleSpec.parse(["id": "e", "workflow": "w", "cron": "0 * * * *", "end_at": "2026-01-01T03:30:00Z"])
        #expect(ended.timing(anchor: 0).fires(after: Self.from, until: .max, limit: 10).count == 3)
        // Jitter is the same for the same fire on every call, and within its bound.
        let jittered = try ScheduleSpec.parse(["id": "j", "workflow": "w", "cron": "* * * * *", "jitter_seconds": 30])
        let timing = jittered.timing(anchor: 0)
        #expect(timing.jitter(of: t) == timing.jitter(of: t))
        #expect((0..<100).map { timing.jitter(of: t + Int64($0) * 60_000) }.allSatisfy { (0..<30_000).contains($0) })
        #expect(Set((0..<100).map { timing.jitter(of: t + Int64($0) * 60_000) }).count > 50)
    }

    @Test func theOriginalsSixFieldExampleNeedsTheSecondsDialect() throws {
        #expect(throws: ValidationError.self) { try ScheduleSpec.parse(["id": "x", "workflow": "w", "cron": "0 */5 * * * *"]) }
        let spec = try ScheduleSpec.parse(["id": "x", "workflow": "w", "cron": "0 */5 * * * *", "dialect": "seconds"])
        #expect(spec.timing(anchor: 0).fires(after: Self.from, until: Self.from + 900_000, limit: 10).count == 3)
    }

    @Test func badSchedulesAreRefusedAtTheirPointers() {
        let bad: [(JSONValue, String)] = [
            (["workflow": "w", "cron": "* * * * *"], "/id"),
            (["id": "x", "cron": "* * * * *"], "/workflow"),
            (["id": "x", "workflow": "w"], ""),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "at": "2026-01-01T00:00:00Z"], ""),
            (["id": "x", "workflow": "w", "cron": "61 * * * *"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "* * * * * * *", "dialect": "seconds"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "0 0 30 2 *"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "5-1 * * * *"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "*/0 * * * *"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "@every 5m"], "/cron"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "time_zone": "Mars/Olympus"], "/time_zone"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "dst_repeated": "twice"], "/dst_repeated"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "overlap": "maybe"], "/overlap"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "jitter_seconds": 3601], "/jitter_seconds"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "max_catch_up_runs": 0], "/max_catch_up_runs"),
            (["id": "x", "workflow": "w", "interval_seconds": 0], "/interval_seconds"),
            (["id": "x", "workflow": "w", "interval_seconds": 1e300], "/interval_seconds"),
            (["id": "x", "workflow": "w", "at": "tomorrow"], "/at"),
            (["id": "x", "workflow": "w", "interval_seconds": 5, "dialect": "seconds"], "/dialect"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "input": [1]], "/input"),
            (["id": "-x", "workflow": "w", "cron": "* * * * *"], "/id"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "colour": "red"], "/colour"),
            (["id": "x", "workflow": "w", "cron": .string(String(repeating: "1,", count: 200) + "1 * * * *")], "/cron"),
            (["id": "x", "workflow": "w", "cron": "* * * * *", "start_at": "2026-02-01T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"], "/end_at"),
        ]
        for (json, pointer) in bad {
            do {
                _ = try ScheduleSpec.parse(json)
                Issue.record("accepted \(json)")
            } catch let error as ValidationError {
                #expect(error.issues.contains { $0.pointer == pointer }, "\(json): \(error.issues)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    /// What is written back reads again to the same schedule.
    @Test func theJSONFormRoundTrips() throws {
        let spec = try ScheduleSpec.parse([
            "id": "eod", "workflow": "report", "version": "1.0.0", "input": ["a": 1], "cron": "0 18 * * 1-5",
            "time_zone": "Europe/London", "overlap": "buffer_one", "missed": "run_all", "jitter_seconds": 5,
        ])
        #expect(try ScheduleSpec.parse(spec.json) == spec)
    }
}
