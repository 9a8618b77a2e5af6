import Foundation
import Logging
import ServiceLifecycle
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// Fires schedules on the leader, and carries out what callers ask of schedules on any node.
///
/// Every change to a schedule (a fire, a pause, a trigger) is a compare-and-set on its revision, and every run a
/// schedule starts is written in the same transaction as the schedule's new state, keyed by (schedule, fire time): so
/// a fire time starts at most one run even when an old leader and a new one overlap, and a crash between deciding
/// and writing loses nothing (the next leader decides again from the stored state).
public final class Scheduler: Service, Sendable {
    public struct Configuration: Sendable {
        /// How often the leader looks for due schedules (the bound on how late a fire starts, under normal load).
        public var pollInterval: Duration
        /// Schedules handled per look.
        public var batch: Int
        /// A fire time later than this when the leader gets to it counts as missed (downtime), and the schedule's
        /// missed-run policy decides whether it runs.
        public var lateness: Duration
        /// How many schedules are fired at once.
        public var concurrency: Int

        public init(pollInterval: Duration = .milliseconds(200), batch: Int = 500, lateness: Duration = .seconds(60), concurrency: Int = 16) {
            self.pollInterval = pollInterval
            self.batch = batch
            self.lateness = lateness
            self.concurrency = concurrency
        }
    }

    /// At most this many fire times a backfill starts.
    public static let maxBackfill = 1000

    let store: any WorkflowStore
    let registry: WorkflowRegistry
    let engine: WorkflowEngine
    let isLeader: @Sendable () -> Bool
    let clock: any WorkflowClock
    let configuration: Configuration
    let logger: Logger

    public init(
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        engine: WorkflowEngine,
        isLeader: @escaping @Sendable () -> Bool,
        clock: any WorkflowClock = SystemClock(),
        configuration: Configuration = .init(),
        logger: Logger
    ) {
        self.store = store
        self.registry = registry
        self.engine = engine
        self.isLeader = isLeader
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        await whileLeading(isLeader, every: configuration.pollInterval, logger: logger, failure: "schedules could not be fired; will retry") {
            try await self.tick()
        }
    }

    /// Fires what is due; true when there may be more due at once.
    @discardableResult
    public func tick() async throws -> Bool {
        let due = try await store.schedulesDue(before: clock.now(), limit: configuration.batch)
        var index = 0
        while index < due.count {
            let chunk = due[index..<min(due.count, index + configuration.concurrency)]
            index += chunk.count
            await withTaskGroup(of: Void.self) { group in
                for schedule in chunk {
                    group.addTask {
                        do {
                            _ = try await self.advance(schedule, now: self.clock.now(), missedThrough: nil, audit: [])
                        } catch {
                            self.logger.warning(
                                "schedule could not be fired",
                                metadata: ["tenant": "\(schedule.tenantID)", "schedule": "\(schedule.id)", "error": "\(error)"]
                            )
                        }
                    }
                }
            }
        }
        return due.count == configuration.batch
    }

    // MARK: firing

    /// What one pass over a schedule decided.
    struct Decision {
        var record: ScheduleRecord
        var fires: [Int64]
        var cancel: String?
    }

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// Works out which fire times run now under the missed-run and overlap policies, and where the schedule goes next.
    /// Fire times at or before `missedThrough` count as missed however recent (they passed while it was paused).
    func decide(_ s: ScheduleRecord, spec: ScheduleSpec, now: Date, missedThrough: Int64?, extra: [Int64] = []) async throws -> Decision {
        let timing = spec.timing(anchor: Self.ms(s.createdAt))
        let nowMs = Self.ms(now)
        var state = s.state
        // Beyond the catch-up window nothing runs: jump over it (counting what is skipped, up to a bound).
        let windowStart = nowMs - Int64(spec.catchUpWindowSeconds) * 1000
        if let next = state.nextFireAt, next < windowStart {
            var t: Int64? = next
            var skipped = 0
            while let x = t, x < windowStart, skipped < 100_000 {
                skipped += 1
                t = timing.next(after: x)
            }
            state.skippedMissed += skipped
            state.nextFireAt = (t ?? 0) < windowStart ? timing.next(after: windowStart - 1) : t
        }
        var due: [Int64] = []
        while !s.paused, let t = state.nextFireAt, t + timing.jitter(of: t) <= nowMs, due.count < 100_000 {
            due.append(t)
            state.nextFireAt = timing.next(after: t)
        }
        let lateness = Int64(configuration.lateness.seconds * 1000)
        let isMissed = { (t: Int64) in nowMs - (t + timing.jitter(of: t)) > lateness || (missedThrough.map { t <= $0 } ?? false) }
        let missed = due.filter(isMissed)
        let onTime = due.filter { !isMissed($0) }
        let chosen: [Int64]
        switch spec.missed {
        case .skip: chosen = onTime
        case .runOnce: chosen = (onTime.isEmpty ? Array(missed.suffix(1)) : []) + onTime
        case .runAll: chosen = Array(missed.suffix(spec.maxCatchUpRuns)) + onTime
        }
        state.skippedMissed += due.count - chosen.count
        if let last = due.last { state.lastFireAt = last }

        var candidates: [Int64] = []
        if let buffered = state.bufferedFireAt {
            candidates.append(buffered)
            state.bufferedFireAt = nil
        }
        candidates += chosen + extra
        var running = false
        if let last = state.lastRunID, spec.overlap != .allowAll, !candidates.isEmpty {
            running = try await store.runGet(tenantID: s.tenantID, id: last).map { !$0.status.isTerminal } ?? false
        }
        var fires: [Int64] = []
        var cancel: String?
        switch spec.overlap {
        case .allowAll: fires = candidates
        case .cancelOther:
            // Only the latest fire runs; the run before it is cancelled.
            if let latest = candidates.last {
                fires = [latest]
                state.skippedOverlap += candidates.count - 1
                if running { cancel = state.lastRunID }
            }
        case .skip, .bufferOne:
            for t in candidates {
                if !running {
                    fires.append(t)
                    running = true
                } else if spec.overlap == .bufferOne {
                    if state.bufferedFireAt != nil { state.skippedOverlap += 1 }
                    state.bufferedFireAt = t
                } else {
                    state.skippedOverlap += 1
                }
            }
        }
        var record = s
        record.state = state
        record.nextWakeAt = Self.wake(state, timing: timing, now: nowMs)
        return Decision(record: record, fires: fires, cancel: cancel)
    }

    static func wake(_ state: ScheduleState, timing: ScheduleTiming, now: Int64) -> Date? {
        var wake = state.nextFireAt.map { $0 + timing.jitter(of: $0) }
        // A buffered fire is looked at again every second until the run before it finishes.
        if state.bufferedFireAt != nil { wake = min(wake ?? .max, now + 1000) }
        return wake.map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// One pass over a schedule: decide, then write the schedule and its runs together. Returns the schedule as
    /// written and the fires' runs, or nil when the schedule changed meanwhile (nothing was written).
    func advance(
        _ s: ScheduleRecord,
        now: Date,
        missedThrough: Int64?,
        extra: [Int64] = [],
        change: (inout ScheduleRecord) -> Void = { _ in },
        audit: [AuditRecord]
    ) async throws -> (record: ScheduleRecord, runs: [(scheduledAt: Int64, runID: String, created: Bool)])? {
        let spec = try ScheduleSpec.parse(s.spec)
        var decision = try await decide(s, spec: spec, now: now, missedThrough: missedThrough, extra: extra)
        change(&decision.record)
        var starts: [(scheduledAt: Int64, run: RunInsertParams)] = []
        var prepared: [String: PreparedStart] = [:]
        if !decision.fires.isEmpty {
            do {
                (starts, prepared) = try await prepareStarts(spec, scheduleID: s.id, tenantID: s.tenantID, times: decision.fires, backfill: false)
                decision.record.state.lastRunID = starts.last?.run.run.id ?? decision.record.state.lastRunID
                decision.record.state.fired += starts.count
                decision.record.state.lastError = nil
            } catch let error as WorkflowError {
                // The fire happened and started nothing: say why on the schedule, and carry on with the next one.
                decision.record.state.failed += decision.fires.count
                decision.record.state.lastError = error.message
                logger.warning("a schedule's workflow could not be started", metadata: ["schedule": "\(s.id)", "error": "\(error)"])
            }
        }
        decision.record.revision = s.revision + 1
        decision.record.updatedAt = now
        let outcome = try await store.scheduleFire(
            ScheduleFireParams(schedule: decision.record, expectedRevision: s.revision, starts: starts, audit: audit),
            now: now
        )
        guard case .applied(let started, let existing) = outcome else { return nil }
        var runs: [(scheduledAt: Int64, runID: String, created: Bool)] = []
        let timing = spec.timing(anchor: Self.ms(s.createdAt))
        for fire in started {
            if let start = prepared[fire.runID] { engine.started(start, tasks: fire.tasks) }
            runs.append((fire.scheduledAt, fire.runID, true))
            let lag = Self.ms(now) - fire.scheduledAt - timing.jitter(of: fire.scheduledAt)
            // Fires asked for (trigger now) have no lateness to measure.
            if !extra.contains(fire.scheduledAt) { engine.metrics?.scheduleFired(lag: .milliseconds(lag)) }
            logger.debug("schedule fired", metadata: ["schedule": "\(s.id)", "run": "\(fire.runID)", "lag_ms": "\(lag)"])
        }
        runs += existing.map { ($0.scheduledAt, $0.runID, false) }
        if let cancel = decision.cancel {
            _ = try? await engine.cancel(
                runID: cancel,
                tenantID: s.tenantID,
                reason: "cancelled by schedule \(s.id): a newer fire replaced it (overlap policy cancel_other)",
                actor: "schedule:\(s.id)"
            )
        }
        return (decision.record, runs)
    }

    /// The runs of `times`, not written yet: each records its schedule and fire time (`schedule_fired`).
    func prepareStarts(
        _ spec: ScheduleSpec,
        scheduleID: String,
        tenantID: String,
        times: [Int64],
        backfill: Bool
    ) async throws
        -> (starts: [(scheduledAt: Int64, run: RunInsertParams)], prepared: [String: PreparedStart])
    {
        let definition = try await registry.resolveStartable(spec.workflow, version: spec.version, tenantID: tenantID)
        var starts: [(scheduledAt: Int64, run: RunInsertParams)] = []
        var prepared: [String: PreparedStart] = [:]
        for t in times {
            var data: [String: JSONValue] = ["schedule_id": .string(scheduleID), "scheduled_at": .string(ScheduleTime.format(t))]
            if backfill { data["backfill"] = true }
            let start = try engine.prepareStart(
                definition: definition,
                input: spec.input,
                tenantID: tenantID,
                createdBy: "schedule:\(scheduleID)",
                events: [NewEvent("schedule_fired", data: .object(data))]
            )
            starts.append((t, start.params))
            prepared[start.params.run.id] = start
        }
        return (starts, prepared)
    }
}
