import Foundation
import WorkflowPrimitive

/// A schedule as stored: what its owner wrote (`spec`, the JSON of a `ScheduleSpec`) and where firing stands.
public struct ScheduleRecord: Sendable, Hashable {
    public var tenantID: String
    public var id: String
    public var spec: JSONValue
    public var state: ScheduleState
    public var paused: Bool
    /// Why it was paused (or resumed), as its owner said.
    public var note: String?
    /// When the leader must look at it next (a fire time plus its jitter, or a recheck of a buffered fire); nil when
    /// it will never fire again.
    public var nextWakeAt: Date?
    /// Bumped by every change; a change is written only if the revision is still the one it read.
    public var revision: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var createdBy: String?

    public init(
        tenantID: String,
        id: String,
        spec: JSONValue,
        state: ScheduleState,
        paused: Bool,
        note: String?,
        nextWakeAt: Date?,
        revision: Int,
        createdAt: Date,
        updatedAt: Date,
        createdBy: String?
    ) {
        self.tenantID = tenantID
        self.id = id
        self.spec = spec
        self.state = state
        self.paused = paused
        self.note = note
        self.nextWakeAt = nextWakeAt
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
    }
}

/// Where a schedule's firing stands (milliseconds since 1970 for fire times).
public struct ScheduleState: Sendable, Hashable {
    /// The next fire time not yet handled (fired or skipped); nil when there is none.
    public var nextFireAt: Int64?
    /// The last fire time handled.
    public var lastFireAt: Int64?
    /// The last run a fire started (the overlap policy looks at it).
    public var lastRunID: String?
    /// A fire held back by the `buffer_one` overlap policy until the last run finishes.
    public var bufferedFireAt: Int64?
    public var fired: Int
    /// Fire times dropped by the missed-run policy (after an outage or a pause).
    public var skippedMissed: Int
    /// Fire times dropped by the overlap policy.
    public var skippedOverlap: Int
    /// Fire times that started nothing because the workflow could not be started (see `lastError`).
    public var failed: Int = 0
    public var lastError: String?

    public init(
        nextFireAt: Int64? = nil,
        lastFireAt: Int64? = nil,
        lastRunID: String? = nil,
        bufferedFireAt: Int64? = nil,
        fired: Int = 0,
        skippedMissed: Int = 0,
        skippedOverlap: Int = 0
    ) {
        self.nextFireAt = nextFireAt
        self.lastFireAt = lastFireAt
        self.lastRunID = lastRunID
        self.bufferedFireAt = bufferedFireAt
        self.fired = fired
        self.skippedMissed = skippedMissed
        self.skippedOverlap = skippedOverlap
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "fired": .number(Double(fired)), "skipped_missed": .number(Double(skippedMissed)),
            "skipped_overlap": .number(Double(skippedOverlap)),
        ]
        if let nextFireAt { o["next_fire_at"] = .number(Double(nextFireAt)) }
        if let lastFireAt { o["last_fire_at"] = .number(Double(lastFireAt)) }
        if let lastRunID { o["last_run_id"] = .string(lastRunID) }
        if let bufferedFireAt { o["buffered_fire_at"] = .number(Double(bufferedFireAt)) }
        if failed > 0 { o["failed"] = .number(Double(failed)) }
        if let lastError { o["last_error"] = .string(lastError) }
        return .object(o)
    }

    public init(json: JSONValue) {
        func ms(_ key: String) -> Int64? { json[key]?.numberValue.map { Int64($0) } }
        func count(_ key: String) -> Int { json[key]?.numberValue.map { Int($0) } ?? 0 }
        self.init(
            nextFireAt: ms("next_fire_at"),
            lastFireAt: ms("last_fire_at"),
            lastRunID: json["last_run_id"]?.stringValue,
            bufferedFireAt: ms("buffered_fire_at"),
            fired: count("fired"),
            skippedMissed: count("skipped_missed"),
            skippedOverlap: count("skipped_overlap")
        )
        failed = count("failed")
        lastError = json["last_error"]?.stringValue
    }
}

/// One run a schedule started.
public struct ScheduleFireRecord: Sendable, Hashable {
    public var scheduleID: String
    /// The fire time the run stands for (without jitter).
    public var scheduledAt: Int64
    public var runID: String
    public var firedAt: Date

    public init(scheduleID: String, scheduledAt: Int64, runID: String, firedAt: Date) {
        self.scheduleID = scheduleID
        self.scheduledAt = scheduledAt
        self.runID = runID
        self.firedAt = firedAt
    }
}

/// Runs a schedule starts in one transaction, with the schedule's new state.
///
/// Each start is keyed by (schedule, fire time): a key already taken starts nothing (the run that took it is
/// reported instead), so a fire time starts at most one run, even when two leaders overlap during a failover.
public struct ScheduleFireParams: Sendable {
    /// The schedule as it must be afterwards; written only if its stored revision is `expectedRevision`.
    public var schedule: ScheduleRecord
    public var expectedRevision: Int
    public var starts: [(scheduledAt: Int64, run: RunInsertParams)]
    /// Written with the fire. (Each run started is also reported as a `schedule.fired` event, by the driver: only
    /// it knows which fire times were free.)
    public var audit: [AuditRecord]

    public init(schedule: ScheduleRecord, expectedRevision: Int, starts: [(scheduledAt: Int64, run: RunInsertParams)], audit: [AuditRecord] = []) {
        self.schedule = schedule
        self.expectedRevision = expectedRevision
        self.starts = starts
        self.audit = audit
    }
}

public enum ScheduleFireOutcome: Sendable {
    /// The schedule changed (or vanished) since it was read; nothing was written.
    case conflict
    /// Written. `started` holds the runs created (with their tasks); `existing` the fire times that had a run already.
    case applied(started: [(scheduledAt: Int64, runID: String, tasks: [TaskRecord])], existing: [(scheduledAt: Int64, runID: String)])
}

/// Schedules, per tenant; the leader fires the due ones.
public protocol ScheduleStore: Sendable {
    /// False when the tenant already has a schedule with this id.
    /// - Throws: `quota_exceeded` when the tenant has `quotas.schedulesPerTenant` already.
    func scheduleInsert(_ schedule: ScheduleRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool
    func scheduleGet(tenantID: String, id: String) async throws -> ScheduleRecord?
    /// By id, after the cursor `after`.
    func scheduleList(tenantID: String, after: String?, limit: Int) async throws -> [ScheduleRecord]
    /// Writes `schedule` if its stored revision is `expectedRevision`; false otherwise (or when it is gone).
    func scheduleUpdate(_ schedule: ScheduleRecord, expectedRevision: Int, audit: [AuditRecord]) async throws -> Bool
    /// Deletes a schedule and its fire log; false when there was none.
    func scheduleDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool
    /// Unpaused schedules of every tenant whose wake time is at or before `before`, earliest first.
    func schedulesDue(before: Date, limit: Int) async throws -> [ScheduleRecord]
    /// How many schedules are active (unpaused with a next wake time), over all tenants.
    func scheduleCountActive() async throws -> Int
    func scheduleFire(_ params: ScheduleFireParams, now: Date) async throws -> ScheduleFireOutcome
    /// The runs a schedule started, latest fire time first, before the fire time `before`.
    func scheduleFires(tenantID: String, scheduleID: String, before: Int64?, limit: Int) async throws -> [ScheduleFireRecord]
}
