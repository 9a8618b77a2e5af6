import WorkflowPrimitive

/// A schedule as the API shows it: what it does (`spec`, every default written out) and where its firing stands.
public struct ScheduleInfo: PageItem, Hashable {
    public static let pageKey = "schedules"
    public var id: String
    public var workflow: String
    /// `active`, `paused`, or `completed` (it will never fire again: a one-time schedule that fired, or past `end_at`).
    public var status: String
    @Nullable public var note: String?
    public var spec: JSONValue
    @Nullable public var nextFireAt: String?
    /// The next fire time as a local time in the schedule's zone (`2026-03-29T03:00:00+02:00`).
    @Nullable public var nextFireLocal: String?
    @Nullable public var lastFireAt: String?
    @Nullable public var lastRunID: String?
    @Nullable public var bufferedFireAt: String?
    public var fired: Int
    public var skippedMissed: Int
    public var skippedOverlap: Int
    public var failed: Int
    @Nullable public var lastError: String?
    public var revision: Int
    public var createdAt: String
    public var updatedAt: String
    @Nullable public var createdBy: String?

    public init(
        id: String,
        workflow: String,
        status: String,
        note: String?,
        spec: JSONValue,
        nextFireAt: String?,
        nextFireLocal: String?,
        lastFireAt: String?,
        lastRunID: String?,
        bufferedFireAt: String?,
        fired: Int,
        skippedMissed: Int,
        skippedOverlap: Int,
        failed: Int,
        lastError: String?,
        revision: Int,
        createdAt: String,
        updatedAt: String,
        createdBy: String?
    ) {
        self.id = id
        self.workflow = workflow
        self.status = status
        self.note = note
        self.spec = spec
        self.nextFireAt = nextFireAt
        self.nextFireLocal = nextFireLocal
        self.lastFireAt = lastFireAt
        self.lastRunID = lastRunID
        self.bufferedFireAt = bufferedFireAt
        self.fired = fired
        self.skippedMissed = skippedMissed
        self.skippedOverlap = skippedOverlap
        self.failed = failed
        self.lastError = lastError
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
    }

    enum CodingKeys: String, CodingKey {
        case id, workflow, status, note, spec, fired, failed, revision
        case nextFireAt = "next_fire_at"
        case nextFireLocal = "next_fire_local"
        case lastFireAt = "last_fire_at"
        case lastRunID = "last_run_id"
        case bufferedFireAt = "buffered_fire_at"
        case skippedMissed = "skipped_missed"
        case skippedOverlap = "skipped_overlap"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case createdBy = "created_by"
    }
}

/// A run a schedule started (`GET /api/v1/schedules/{id}/runs`, and the answer of a trigger or a backfill).
public struct ScheduleFireInfo: PageItem, Hashable {
    public static let pageKey = "fires"
    /// The fire time the run stands for (without jitter).
    public var scheduledAt: String
    public var runID: String
    @Nullable public var firedAt: String?
    /// False when the fire time already had a run (a repeated backfill): that run is returned, nothing new started.
    public var created: Bool

    public init(scheduledAt: String, runID: String, firedAt: String?, created: Bool) {
        self.scheduledAt = scheduledAt
        self.runID = runID
        self.firedAt = firedAt
        self.created = created
    }

    enum CodingKeys: String, CodingKey {
        case created
        case scheduledAt = "scheduled_at"
        case runID = "run_id"
        case firedAt = "fired_at"
    }
}

/// A coming fire time, in UTC and in the schedule's zone.
public struct FireTimeInfo: Codable, Sendable, Hashable {
    public var at: String
    public var local: String

    public init(at: String, local: String) {
        self.at = at
        self.local = local
    }
}

/// `GET /api/v1/schedules/{id}/preview`, `POST /api/v1/schedules/preview`.
public struct SchedulePreview: Codable, Sendable, Hashable {
    public var timeZone: String
    public var fires: [FireTimeInfo]

    public init(timeZone: String, fires: [FireTimeInfo]) {
        self.timeZone = timeZone
        self.fires = fires
    }

    enum CodingKeys: String, CodingKey {
        case fires
        case timeZone = "time_zone"
    }
}

/// `POST /api/v1/schedules/{id}/trigger`.
public struct ScheduleTriggered: Codable, Sendable, Hashable {
    /// The run started, or null when the overlap policy skipped or buffered the fire.
    @Nullable public var runID: String?
    public var schedule: ScheduleInfo

    public init(runID: String?, schedule: ScheduleInfo) {
        self.runID = runID
        self.schedule = schedule
    }

    enum CodingKeys: String, CodingKey {
        case schedule
        case runID = "run_id"
    }
}
