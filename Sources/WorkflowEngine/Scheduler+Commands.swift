import Foundation
import Logging
import ServiceLifecycle
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// What callers ask of schedules, on any node: each change a compare-and-set on the schedule's revision.
extension Scheduler {
    /// Reads a schedule, applies `body`, and retries when the leader fired it meanwhile.
    func withSchedule<T>(
        tenantID: String,
        id: String,
        _ body: (ScheduleRecord) async throws -> T?
    ) async throws -> T {
        for _ in 0..<5 {
            guard let s = try await store.scheduleGet(tenantID: tenantID, id: id) else {
                throw WorkflowError(.scheduleNotFound, "no schedule \(id)")
            }
            if let result = try await body(s) { return result }
        }
        throw WorkflowError(.scheduleConflict, "schedule \(id) kept changing while this request tried to change it; try again")
    }

    func auditRecord(
        _ tenantID: String,
        _ audit: AuditContext?,
        _ action: String,
        _ id: String,
        details: JSONValue = .object([:])
    )
        -> [AuditRecord]
    {
        [AuditRecord(tenantID: tenantID, at: clock.now(), context: audit, action: action, target: "schedule:\(id)", details: details)]
    }

    /// Reads a schedule's JSON form; what is wrong is an `invalid_request` with every problem at its pointer.
    public static func spec(_ json: JSONValue) throws -> ScheduleSpec {
        do {
            return try ScheduleSpec.parse(json)
        } catch let error as ValidationError {
            throw WorkflowError(.invalidRequest, "the schedule is invalid", issues: error.issues)
        }
    }

    /// Creates a schedule from its JSON form; the workflow must exist in the tenant.
    public func create(
        _ json: JSONValue,
        tenantID: String,
        paused: Bool,
        note: String?,
        createdBy: String?,
        audit: AuditContext?,
        quotas: StoreQuotas = .default
    ) async throws
        -> ScheduleRecord
    {
        let spec = try Self.spec(json)
        _ = try await registry.resolve(spec.workflow, version: spec.version, tenantID: tenantID)
        let now = clock.now()
        let timing = spec.timing(anchor: Self.ms(now))
        let next = timing.next(after: Self.ms(now))
        if case .once = spec.trigger, next == nil {
            throw WorkflowError(
                .invalidRequest,
                "the schedule would never fire: 'at' is in the past",
                issues: [ValidationIssue(pointer: JSONPointer.root.appending("at"), message: "is in the past")]
            )
        }
        let state = ScheduleState(nextFireAt: next)
        let record = ScheduleRecord(
            tenantID: tenantID,
            id: spec.id,
            spec: spec.json,
            state: state,
            paused: paused,
            note: note,
            nextWakeAt: Self.wake(state, timing: timing, now: Self.ms(now)),
            revision: 1,
            createdAt: now,
            updatedAt: now,
            createdBy: createdBy
        )
        let audit = auditRecord(tenantID, audit, "schedule.create", spec.id, details: spec.json)
        guard try await store.scheduleInsert(record, audit: audit, quotas: quotas) else {
            throw WorkflowError(.scheduleExists, "a schedule \(spec.id) exists; change it with PUT or delete it first")
        }
        return record
    }

    /// Replaces what a schedule does and when; firing continues from now with the new spec (counters are kept).
    public func replace(id: String, _ json: JSONValue, tenantID: String, audit: AuditContext?) async throws -> ScheduleRecord {
        var json = json
        if case .object(var fields) = json, fields["id"] == nil {
            fields["id"] = .string(id)
            json = .object(fields)
        }
        let spec = try Self.spec(json)
        guard spec.id == id else {
            throw WorkflowError(
                .invalidRequest,
                "the body's id differs from the path's",
                issues: [ValidationIssue(pointer: JSONPointer.root.appending("id"), message: "must be \(id), as in the path")]
            )
        }
        _ = try await registry.resolve(spec.workflow, version: spec.version, tenantID: tenantID)
        return try await withSchedule(tenantID: tenantID, id: id) { s in
            let now = clock.now()
            var r = s
            let timing = spec.timing(anchor: Self.ms(s.createdAt))
            r.spec = spec.json
            r.state.nextFireAt = timing.next(after: Self.ms(now))
            r.state.bufferedFireAt = nil
            r.nextWakeAt = Self.wake(r.state, timing: timing, now: Self.ms(now))
            r.revision += 1
            r.updatedAt = now
            let ok = try await store.scheduleUpdate(
                r,
                expectedRevision: s.revision,
                audit: auditRecord(tenantID, audit, "schedule.update", id, details: spec.json)
            )
            return ok ? r : nil
        }
    }

    public func pause(id: String, tenantID: String, note: String?, audit: AuditContext?) async throws -> ScheduleRecord {
        try await withSchedule(tenantID: tenantID, id: id) { s in
            var r = s
            r.paused = true
            r.note = note
            r.revision += 1
            r.updatedAt = clock.now()
            let details: JSONValue = note.map { ["note": .string($0)] } ?? .object([:])
            let ok = try await store.scheduleUpdate(
                r,
                expectedRevision: s.revision,
                audit: auditRecord(tenantID, audit, "schedule.pause", id, details: details)
            )
            return ok ? r : nil
        }
    }

    /// Resumes a paused schedule: fire times that passed while it was paused count as missed, and its missed-run
    /// policy decides (at once) which of them run.
    public func resume(id: String, tenantID: String, note: String?, audit: AuditContext?) async throws -> ScheduleRecord {
        try await withSchedule(tenantID: tenantID, id: id) { s in
            guard s.paused else { return s }
            let now = clock.now()
            var s2 = s
            s2.paused = false
            let details: JSONValue = note.map { ["note": .string($0)] } ?? .object([:])
            let result = try await advance(
                s2,
                now: now,
                missedThrough: Self.ms(now),
                change: { $0.note = note },
                audit: auditRecord(tenantID, audit, "schedule.resume", id, details: details)
            )
            return result?.record
        }
    }

    /// Fires a schedule now (the fire time is now), under its overlap policy.
    public func trigger(id: String, tenantID: String, audit: AuditContext?) async throws -> (record: ScheduleRecord, runID: String?) {
        try await withSchedule(tenantID: tenantID, id: id) { s in
            let now = clock.now()
            guard
                let result = try await advance(
                    s,
                    now: now,
                    missedThrough: nil,
                    extra: [Self.ms(now)],
                    audit: auditRecord(tenantID, audit, "schedule.trigger", id)
                )
            else { return nil }
            return (result.record, result.runs.last(where: { $0.scheduledAt == Self.ms(now) })?.runID)
        }
    }

    /// Starts a run for every fire time in `[from, to]` that has none yet (whatever the overlap policy: a backfill
    /// asks for all of them). At most ``maxBackfill`` fire times.
    public func backfill(
        id: String,
        tenantID: String,
        from: Int64,
        to: Int64,
        audit: AuditContext?
    ) async throws
        -> [(scheduledAt: Int64, runID: String, created: Bool)]
    {
        guard to >= from else { throw WorkflowError(.invalidRequest, "'to' must not be before 'from'") }
        return try await withSchedule(tenantID: tenantID, id: id) { s in
            let spec = try ScheduleSpec.parse(s.spec)
            let times = spec.timing(anchor: Self.ms(s.createdAt)).fires(after: from - 1, until: to, limit: Self.maxBackfill + 1)
            guard times.count <= Self.maxBackfill else {
                throw WorkflowError(.invalidRequest, "the range holds more than \(Self.maxBackfill) fire times; backfill it in parts")
            }
            let now = clock.now()
            let (starts, prepared) = try await prepareStarts(spec, scheduleID: id, tenantID: tenantID, times: times, backfill: true)
            var r = s
            r.revision += 1
            r.updatedAt = now
            let outcome = try await store.scheduleFire(
                ScheduleFireParams(
                    schedule: r,
                    expectedRevision: s.revision,
                    starts: starts,
                    audit: auditRecord(
                        tenantID,
                        audit,
                        "schedule.backfill",
                        id,
                        details: [
                            "from": .string(ScheduleTime.format(from)), "to": .string(ScheduleTime.format(to)), "fires": .number(Double(times.count)),
                        ]
                    )
                ),
                now: now
            )
            guard case .applied(let started, let existing) = outcome else { return nil }
            for fire in started {
                if let start = prepared[fire.runID] { engine.started(start, tasks: fire.tasks) }
            }
            return (started.map { ($0.scheduledAt, $0.runID, true) } + existing.map { ($0.scheduledAt, $0.runID, false) }).sorted { $0.0 < $1.0 }
        }
    }

    public func delete(id: String, tenantID: String, audit: AuditContext?) async throws {
        guard try await store.scheduleDelete(tenantID: tenantID, id: id, audit: auditRecord(tenantID, audit, "schedule.delete", id)) else {
            throw WorkflowError(.scheduleNotFound, "no schedule \(id)")
        }
    }
}
