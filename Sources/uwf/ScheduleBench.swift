import Foundation
import Logging
import WorkflowEngine
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowStoreSQLite

/// `uwf bench --scenario schedules`: what 100,000 active schedules (the original design's capacity) cost the leader.
///
/// 1. Evaluation: parsing each schedule and computing its next fire time, for a mix of cron schedules in eight zones
///    (with DST), intervals and one-time schedules; the baseline, in the same run, is Foundation's
///    `Calendar.nextDate(after:matching:)` answering the same question for a daily cron.
/// 2. The store (embedded SQLite): inserting them, and the leader's look for due schedules with all of them active.
/// 3. A burst: `burst` schedules due in the same second, fired by the scheduler (each fire writes the schedule and a
///    run in one transaction).
struct ScheduleBench {
    var count: Int
    var burst: Int
    var json: Bool

    static let zones = [
        "UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Europe/Berlin", "Australia/Sydney", "America/Sao_Paulo",
    ]
    static let crons: [(String, String)] = [
        ("*/5 * * * *", "unix"), ("0 9 * * MON-FRI", "unix"), ("30 1 * * *", "unix"), ("0 */15 * * * *", "seconds"), ("@hourly", "unix"),
        ("0 0 1 * *", "unix"), ("15 2 * * *", "unix"),
    ]

    func spec(_ i: Int) -> JSONValue {
        var fields: [String: JSONValue] = ["id": .string("s\(i)"), "workflow": "tick"]
        switch i % 10 {
        case 0..<5:
            let (cron, dialect) = Self.crons[i % Self.crons.count]
            fields["cron"] = .string(cron)
            fields["dialect"] = .string(dialect)
            fields["time_zone"] = .string(Self.zones[i % Self.zones.count])
            fields["dst_repeated"] = i % 3 == 0 ? "both" : "first"
        case 5..<8: fields["interval_seconds"] = .number(Double(60 + i % 3600))
        default: fields["at"] = .string(ScheduleTime.format(4_102_444_800_000 + Int64(i) * 1000))
        }
        return .object(fields)
    }

    func run() async throws {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let documents = (0..<count).map(spec)

        // 1. Evaluation, best of three.
        var parseSeconds = Double.infinity
        var nextSeconds = Double.infinity
        var specs: [ScheduleSpec] = []
        for _ in 0..<3 {
            let t0 = ContinuousClock.now
            specs = try documents.map { try ScheduleSpec.parse($0) }
            let t1 = ContinuousClock.now
            var sink: Int64 = 0
            for spec in specs { sink &+= spec.timing(anchor: now).next(after: now) ?? 0 }
            let t2 = ContinuousClock.now
            precondition(sink != 0)
            parseSeconds = min(parseSeconds, (t1 - t0).seconds)
            nextSeconds = min(nextSeconds, (t2 - t1).seconds)
        }
        let cronSpecs = specs.filter { if case .cron = $0.trigger { return true } else { return false } }
        var cronSeconds = Double.infinity
        var foundationSeconds = Double.infinity
        let daily = try ScheduleSpec.parse(["id": "d", "workflow": "w", "cron": "30 1 * * *", "time_zone": "Europe/London"])
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/London")!
        let probes = 20_000
        for _ in 0..<3 {
            let t0 = ContinuousClock.now
            var sink: Int64 = 0
            let timing = daily.timing(anchor: now)
            for i in 0..<probes { sink &+= timing.next(after: now + Int64(i) * 3_600_000) ?? 0 }
            let t1 = ContinuousClock.now
            for i in 0..<probes {
                let date = Date(timeIntervalSince1970: Double(now + Int64(i) * 3_600_000) / 1000)
                let next = calendar.nextDate(after: date, matching: DateComponents(hour: 1, minute: 30, second: 0), matchingPolicy: .nextTime)
                sink &+= Int64(next?.timeIntervalSince1970 ?? 0)
            }
            let t2 = ContinuousClock.now
            precondition(sink != 0)
            cronSeconds = min(cronSeconds, (t1 - t0).seconds)
            foundationSeconds = min(foundationSeconds, (t2 - t1).seconds)
        }

        // 2. The store.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-schedule-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // FULL, as `uwf serve` runs: every insert and every fire is flushed to disk.
        let store = try SQLiteStore(configuration: .init(path: directory.appendingPathComponent("bench.sqlite").path))
        let registry = WorkflowRegistry(store: store)
        _ = try await registry.register(
            document: ["name": "tick", "version": "1.0.0", "definition": ["steps": [["id": "a", "type": "noop"]]]],
            now: Date()
        )
        let created = Date()
        let insertStart = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let chunk = (specs.count + 7) / 8
            for part in 0..<8 {
                let slice = specs[min(specs.count, part * chunk)..<min(specs.count, (part + 1) * chunk)]
                group.addTask {
                    for spec in slice {
                        let next = spec.timing(anchor: now).next(after: now)
                        let record = ScheduleRecord(
                            tenantID: defaultTenantID,
                            id: spec.id,
                            spec: spec.json,
                            state: ScheduleState(nextFireAt: next),
                            paused: false,
                            note: nil,
                            nextWakeAt: next.map { Date(timeIntervalSince1970: Double($0) / 1000 + 3600) },
                            revision: 1,
                            createdAt: created,
                            updatedAt: created,
                            createdBy: nil
                        )
                        _ = try await store.scheduleInsert(record, audit: [], quotas: .default)
                    }
                }
            }
            try await group.waitForAll()
        }
        let insertSeconds = (ContinuousClock.now - insertStart).seconds
        let active = try await store.scheduleCountActive()
        var dueLatencies: [Double] = []
        for _ in 0..<200 {
            let t0 = ContinuousClock.now
            _ = try await store.schedulesDue(before: Date(), limit: 500)
            dueLatencies.append((ContinuousClock.now - t0).seconds * 1000)
        }
        dueLatencies.sort()

        // 3. A burst of due schedules, fired by the scheduler.
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let engine = WorkflowEngine(
            configuration: EngineConfiguration(),
            store: store,
            registry: registry,
            executors: .builtin(http: HTTPRequestStepExecutor(client: .shared)),
            logger: logger
        )
        let scheduler = Scheduler(store: store, registry: registry, engine: engine, isLeader: { true }, logger: logger)
        let dueAt = Date()
        for i in 0..<burst {
            let spec = try ScheduleSpec.parse(["id": .string("burst\(i)"), "workflow": "tick", "interval_seconds": 3600])
            let record = ScheduleRecord(
                tenantID: defaultTenantID,
                id: spec.id,
                spec: spec.json,
                state: ScheduleState(nextFireAt: Int64(dueAt.timeIntervalSince1970 * 1000)),
                paused: false,
                note: nil,
                nextWakeAt: dueAt,
                revision: 1,
                createdAt: dueAt,
                updatedAt: dueAt,
                createdBy: nil
            )
            _ = try await store.scheduleInsert(record, audit: [], quotas: .default)
        }
        let burstStart = ContinuousClock.now
        while try await scheduler.tick() {}
        let burstSeconds = (ContinuousClock.now - burstStart).seconds
        let fired = try await store.schedulesDue(before: Date(), limit: 10).count

        let perSchedule = (parseSeconds + nextSeconds) / Double(count) * 1e6
        let rows: [(String, String)] = [
            ("schedules", String(count)),
            ("active in the store", String(active)),
            ("parse, per schedule", String(format: "%.2f µs", parseSeconds / Double(count) * 1e6)),
            ("next fire time, per schedule (mix)", String(format: "%.2f µs", nextSeconds / Double(count) * 1e6)),
            ("evaluate all \(count)", String(format: "%.1f ms", (parseSeconds + nextSeconds) * 1000)),
            ("cron schedules in the mix", String(cronSpecs.count)),
            ("daily cron in Europe/London: uwf", String(format: "%.2f µs", cronSeconds / Double(probes) * 1e6)),
            ("same, Foundation Calendar.nextDate (baseline)", String(format: "%.2f µs", foundationSeconds / Double(probes) * 1e6)),
            ("ratio uwf / Foundation", String(format: "%.2f", cronSeconds / foundationSeconds)),
            ("insert \(count) (SQLite, one transaction each)", String(format: "%.1f s (%.0f/s)", insertSeconds, Double(count) / insertSeconds)),
            ("due look with all active, p50 / p99", String(format: "%.2f / %.2f ms", dueLatencies[100], dueLatencies[197])),
            ("burst of \(burst) due at once: fired in", String(format: "%.2f s (%.0f fires/s)", burstSeconds, Double(burst) / burstSeconds)),
            ("left due after the burst", String(fired)),
        ]
        if json {
            var object: [String: JSONValue] = ["scenario": "schedules", "per_schedule_us": .number(perSchedule)]
            for (key, value) in rows { object[key] = .string(value) }
            print(JSONValue.object(object).canonicalString())
        } else {
            print(TableOutput.table(["METRIC", "VALUE"], rows.map { [$0.0, $0.1] }))
        }
    }
}
