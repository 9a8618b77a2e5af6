import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Applies many run mutations with a fixed number of set-based statements (group commit done in SQL, not in a loop).
///
/// Mutations are applied in order to in-memory snapshots, so a later mutation of the same run sees the earlier
/// ones; only the final rows are written. Nullable values travel in arrays with sentinels ('' for text and JSON,
/// a negative number for times) because the wire format has no nullable array elements for these types.
struct PostgresBatchWriter {
    private var runs: [String: RunRecord] = [:]
    private var nextSeq: [String: Int] = [:]
    private var changedRuns: Set<String> = []
    private var steps: [String: [String: StepRunRecord]] = [:]
    private var changedSteps: [String: StepRunRecord] = [:]
    private var events: [(runID: String, tenant: String, seq: Int, type: String, stepID: String?, data: String, at: Date)] = []
    private var deleteTaskIDs: [Int64] = []
    private var deleteAllOf: Set<String> = []
    private var deleteSteps: [(runID: String, stepID: String)] = []
    private var pendingTasks: [(owner: Int, runID: String, tenant: String, task: NewTask, offset: Int?, alive: Bool)] = []
    private var newRuns: [RunRecord] = []
    private var deleteStepRows: [(runID: String, stepID: String)] = []
    private var releaseRuns: [String] = []
    private var audit: [AuditRecord] = []
    private var outbox: [OutboxEvent] = []

    /// The kinds `TaskDeletion.all` removes, as SQL literals: constants from `TaskKind`, written into the statement
    /// text so that the planner sees them as it would a literal list.
    static let removedKinds = TaskKind.removedWithRun.map { "'\($0)'" }.joined(separator: ", ")
    private(set) var announce = false

    /// Registers a run as loaded (or just inserted).
    mutating func load(_ snapshot: RunSnapshot) {
        runs[snapshot.run.id] = snapshot.run
        nextSeq[snapshot.run.id] = snapshot.nextEventSeq
        steps[snapshot.run.id] = snapshot.steps
    }

    func snapshot(of runID: String) -> RunSnapshot? {
        guard let run = runs[runID] else { return nil }
        return RunSnapshot(run: run, steps: steps[runID] ?? [:], nextEventSeq: nextSeq[runID] ?? 1)
    }

    mutating func consume(fence taskID: Int64) { deleteTaskIDs.append(taskID) }

    /// Registers a new run and its first transition (its row is inserted before everything that refers to it).
    mutating func insert(_ params: RunInsertParams, owner: Int, now: Date) {
        newRuns.append(params.run)
        load(RunSnapshot(run: params.run, steps: [:], nextEventSeq: 1))
        apply(params.initial, runID: params.run.id, owner: owner, now: now)
    }

    /// Records mutation number `owner` (its inserted tasks are reported under that number).
    mutating func apply(_ m: RunMutation, runID: String, owner: Int, now: Date) {
        guard var run = runs[runID] else { return }
        let tenant = run.tenantID
        if let updated = m.run {
            run = updated
            runs[runID] = run
            changedRuns.insert(runID)
        }
        for id in m.deleteSteps {
            steps[runID]?[id] = nil
            changedSteps[runID + "\u{0}" + id] = nil
            deleteStepRows.append((runID, id))
        }
        for step in m.steps {
            steps[runID, default: [:]][step.stepID] = step
            changedSteps[runID + "\u{0}" + step.stepID] = step
        }
        var seq = nextSeq[runID] ?? 1
        for e in m.events {
            events.append((runID, tenant, seq, e.type, e.stepID, e.data.canonicalString(), now))
            seq += 1
        }
        if !m.events.isEmpty {
            nextSeq[runID] = seq
            changedRuns.insert(runID)
        }
        switch m.deleteTasks {
        case .none: break
        case .all:
            deleteAllOf.insert(runID)
            for i in pendingTasks.indices where pendingTasks[i].runID == runID && !pendingTasks[i].task.kind.isControl {
                pendingTasks[i].alive = false
            }
        case .steps(let ids):
            deleteSteps += ids.map { (runID, $0) }
            for i in pendingTasks.indices where pendingTasks[i].runID == runID && ids.contains(pendingTasks[i].task.stepID ?? "") {
                pendingTasks[i].alive = false
            }
        }
        for (task, offset) in zip(m.newTasks, m.queueOffsets()) {
            pendingTasks.append((owner, runID, tenant, task, offset, true))
            if task.leaseOwner == nil { announce = true }
        }
        for child in m.spawn {
            insert(child, owner: owner, now: now)
        }
        audit += m.audit
        outbox += m.outbox
        if !m.releaseRuns.isEmpty {
            releaseRuns += m.releaseRuns
            announce = true
        }
    }

    /// Writes everything; returns the inserted tasks of each mutation owner.
    func flush(_ conn: PostgresConnection, now: Date, logger: Logger) async throws -> [Int: [TaskRecord]] {
        func text(_ v: JSONValue?) -> String { v?.canonicalString() ?? "" }
        func time(_ d: Date?) -> Double { d.map { $0.timeIntervalSince1970 } ?? -1 }

        if !newRuns.isEmpty {
            // Inserted as they stand after their first transition; the UPDATE below is then a no-op for them.
            let rs = newRuns.map { runs[$0.id] ?? $0 }
            try await conn.query(
                """
                INSERT INTO runs (id, tenant_id, definition_id, workflow_name, workflow_version, status, input, output, error,
                    idempotency_key, request_hash, parent_run_id, parent_step_id, item_index, body_path, priority, created_at,
                    started_at, completed_at, updated_at, root_run_id, created_by, trace_parent, next_event_seq)
                SELECT u.id, u.tenant, u.definition, u.name, u.version, u.status, u.input::jsonb, NULLIF(u.output, '')::jsonb,
                    NULLIF(u.error, '')::jsonb, NULLIF(u.ikey, ''), NULLIF(u.hash, ''), NULLIF(u.parent, ''), NULLIF(u.pstep, ''),
                    CASE WHEN u.item < 0 THEN NULL ELSE u.item END, NULLIF(u.body, ''), u.priority, to_timestamp(u.created),
                    CASE WHEN u.started < 0 THEN NULL ELSE to_timestamp(u.started) END,
                    CASE WHEN u.completed < 0 THEN NULL ELSE to_timestamp(u.completed) END, to_timestamp(u.updated),
                    NULLIF(u.root, ''), NULLIF(u.creator, ''), NULLIF(u.trace, ''), 1
                FROM UNNEST(\(rs.map(\.id))::text[], \(rs.map(\.tenantID))::text[], \(rs.map(\.definitionID))::text[],
                            \(rs.map(\.workflowName))::text[], \(rs.map(\.workflowVersion))::text[], \(rs.map(\.status.rawValue))::text[],
                            \(rs.map { text($0.input) })::text[], \(rs.map { text($0.output) })::text[], \(rs.map { text($0.error) })::text[],
                            \(rs.map { $0.idempotencyKey ?? "" })::text[], \(rs.map { $0.requestHash ?? "" })::text[],
                            \(rs.map { $0.parentRunID ?? "" })::text[], \(rs.map { $0.parentStepID ?? "" })::text[],
                            \(rs.map { Int64($0.itemIndex ?? -1) })::int8[], \(rs.map { $0.bodyPath ?? "" })::text[],
                            \(rs.map(\.priority))::int8[],
                            \(rs.map { time($0.createdAt) })::float8[], \(rs.map { time($0.startedAt) })::float8[],
                            \(rs.map { time($0.completedAt) })::float8[], \(rs.map { time($0.updatedAt) })::float8[],
                            \(rs.map { $0.rootRunID ?? "" })::text[], \(rs.map { $0.createdBy ?? "" })::text[],
                            \(rs.map { $0.traceParent ?? "" })::text[])
                    AS u(id, tenant, definition, name, version, status, input, output, error, ikey, hash, parent, pstep, item, body,
                         priority, created, started, completed, updated, root, creator, trace)
                """,
                logger: logger
            )
        }
        if !deleteStepRows.isEmpty {
            try await conn.query(
                """
                DELETE FROM step_runs s USING UNNEST(\(deleteStepRows.map(\.runID))::text[], \(deleteStepRows.map(\.stepID))::text[]) AS d(run_id, step_id)
                WHERE s.run_id = d.run_id AND s.step_id = d.step_id
                """,
                logger: logger
            )
        }
        if !deleteTaskIDs.isEmpty {
            try await conn.query("DELETE FROM tasks WHERE id = ANY(\(deleteTaskIDs)::bigint[])", logger: logger)
        }
        if !deleteAllOf.isEmpty {
            try await conn.query(
                "DELETE FROM tasks WHERE run_id = ANY(\(Array(deleteAllOf))::text[]) AND kind IN (\(unescaped: Self.removedKinds))",
                logger: logger
            )
        }
        if !deleteSteps.isEmpty {
            try await conn.query(
                """
                DELETE FROM tasks t USING UNNEST(\(deleteSteps.map(\.runID))::text[], \(deleteSteps.map(\.stepID))::text[]) AS d(run_id, step_id)
                WHERE t.run_id = d.run_id AND t.step_id = d.step_id
                """,
                logger: logger
            )
        }
        if !changedRuns.isEmpty {
            let rs = changedRuns.sorted().compactMap { runs[$0] }
            try await conn.query(
                """
                UPDATE runs r SET status = u.status, output = NULLIF(u.output, '')::jsonb, error = NULLIF(u.error, '')::jsonb,
                    started_at = CASE WHEN u.started < 0 THEN NULL ELSE to_timestamp(u.started) END,
                    completed_at = CASE WHEN u.completed < 0 THEN NULL ELSE to_timestamp(u.completed) END,
                    updated_at = to_timestamp(u.updated), priority = u.priority, next_event_seq = u.seq,
                    compensated = CASE WHEN u.compensated < 0 THEN NULL ELSE u.compensated = 1 END,
                    signals = NULLIF(u.signals, '')::jsonb, dead_letter = u.dead, key_generations = NULLIF(u.generations, '')::jsonb
                FROM UNNEST(\(rs.map(\.id))::text[], \(rs.map(\.status.rawValue))::text[], \(rs.map { text($0.output) })::text[],
                            \(rs.map { text($0.error) })::text[], \(rs.map { time($0.startedAt) })::float8[],
                            \(rs.map { time($0.completedAt) })::float8[], \(rs.map { time($0.updatedAt) })::float8[],
                            \(rs.map(\.priority))::int8[], \(rs.map { nextSeq[$0.id] ?? 1 })::int8[],
                            \(rs.map { Int64($0.compensated.map { $0 ? 1 : 0 } ?? -1) })::int8[],
                            \(rs.map { text(PendingSignal.encode($0.pendingSignals)) })::text[], \(rs.map(\.deadLetter))::bool[],
                            \(rs.map { text(RunRecord.encodeGenerations($0.keyGenerations)) })::text[])
                    AS u(id, status, output, error, started, completed, updated, priority, seq, compensated, signals, dead, generations)
                WHERE r.id = u.id
                """,
                logger: logger
            )
        }
        if !changedSteps.isEmpty {
            let ss = Array(changedSteps.values)
            try await conn.query(
                """
                INSERT INTO step_runs (run_id, step_id, tenant_id, status, attempt, input, output, error, state, started_at, completed_at, updated_at)
                SELECT u.run_id, u.step_id, u.tenant, u.status, u.attempt, NULLIF(u.input, '')::jsonb, NULLIF(u.output, '')::jsonb,
                    NULLIF(u.error, '')::jsonb, NULLIF(u.state, '')::jsonb,
                    CASE WHEN u.started < 0 THEN NULL ELSE to_timestamp(u.started) END,
                    CASE WHEN u.completed < 0 THEN NULL ELSE to_timestamp(u.completed) END, to_timestamp(u.updated)
                FROM UNNEST(\(ss.map(\.runID))::text[], \(ss.map(\.stepID))::text[], \(ss.map { runs[$0.runID]?.tenantID ?? defaultTenantID })::text[],
                            \(ss.map(\.status.rawValue))::text[], \(ss.map(\.attempt))::int8[], \(ss.map { text($0.input) })::text[],
                            \(ss.map { text($0.output) })::text[], \(ss.map { text($0.error) })::text[], \(ss.map { text($0.state?.json) })::text[],
                            \(ss.map { time($0.startedAt) })::float8[], \(ss.map { time($0.completedAt) })::float8[],
                            \(ss.map { time($0.updatedAt) })::float8[])
                    AS u(run_id, step_id, tenant, status, attempt, input, output, error, state, started, completed, updated)
                ON CONFLICT (run_id, step_id) DO UPDATE SET status = EXCLUDED.status, attempt = EXCLUDED.attempt, input = EXCLUDED.input,
                    output = EXCLUDED.output, error = EXCLUDED.error, state = EXCLUDED.state, started_at = EXCLUDED.started_at,
                    completed_at = EXCLUDED.completed_at, updated_at = EXCLUDED.updated_at
                """,
                logger: logger
            )
        }
        if !events.isEmpty {
            try await conn.query(
                """
                INSERT INTO run_events (run_id, seq, tenant_id, type, step_id, data, at)
                SELECT u.run_id, u.seq, u.tenant, u.type, NULLIF(u.step_id, ''), u.data::jsonb, to_timestamp(u.at)
                FROM UNNEST(\(events.map(\.runID))::text[], \(events.map(\.seq))::int8[], \(events.map(\.tenant))::text[],
                            \(events.map(\.type))::text[], \(events.map { $0.stepID ?? "" })::text[], \(events.map(\.data))::text[],
                            \(events.map { $0.at.timeIntervalSince1970 })::float8[])
                    AS u(run_id, seq, tenant, type, step_id, data, at)
                """,
                logger: logger
            )
        }
        var inserted: [Int: [TaskRecord]] = [:]
        let alive = pendingTasks.filter(\.alive)
        if !alive.isEmpty {
            // Reserve the ids first so each inserted row is known to belong to its mutation.
            var ids: [Int64] = []
            for try await id in try await conn.query(
                "SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, \(alive.count))",
                logger: logger
            ).decode(Int64.self) { ids.append(id) }
            guard ids.count == alive.count else { throw PostgresStoreError("could not reserve task ids") }
            // The queue's head places the queued steps (RunMutation.queueTimes).
            let head =
                alive.contains { $0.offset != nil }
                ? try await conn.query(
                    "SELECT fair_at FROM tasks WHERE lease_owner IS NULL ORDER BY priority DESC, fair_at, id LIMIT 1",
                    logger: logger
                ).collect().first.map { try $0.decode(Date.self) }
                : nil
            try await conn.query(
                """
                INSERT INTO tasks (id, tenant_id, run_id, step_id, kind, available_at, priority, lease_owner, lease_expires_at, lease_token, created_at,
                                   fair_at)
                SELECT u.id, u.tenant, u.run_id, NULLIF(u.step_id, ''), u.kind, to_timestamp(u.available), u.priority, NULLIF(u.owner, ''),
                    CASE WHEN u.expires < 0 THEN NULL ELSE to_timestamp(u.expires) END, u.token, to_timestamp(\(now.timeIntervalSince1970)),
                    to_timestamp(u.fair)
                FROM UNNEST(\(ids)::int8[], \(alive.map(\.tenant))::text[], \(alive.map(\.runID))::text[], \(alive.map { $0.task.stepID ?? "" })::text[],
                            \(alive.map(\.task.kind.rawValue))::text[], \(alive.map { $0.task.availableAt.timeIntervalSince1970 })::float8[],
                            \(alive.map(\.task.priority))::int8[], \(alive.map { $0.task.leaseOwner ?? "" })::text[],
                            \(alive.map { time($0.task.leaseExpiresAt) })::float8[], \(alive.map { $0.task.leaseOwner == nil ? Int64(0) : Int64(1) })::int8[],
                            \(alive.map { RunMutation.queueTime(of: $0.task, offset: $0.offset, now: now, head: head).timeIntervalSince1970 })::float8[])
                    AS u(id, tenant, run_id, step_id, kind, available, priority, owner, expires, token, fair)
                """,
                logger: logger
            )
            for (id, pending) in zip(ids, alive) {
                let t = pending.task
                inserted[pending.owner, default: []].append(
                    TaskRecord(
                        id: id,
                        tenantID: pending.tenant,
                        runID: pending.runID,
                        stepID: t.stepID,
                        kind: t.kind,
                        availableAt: t.availableAt,
                        priority: t.priority,
                        leaseOwner: t.leaseOwner,
                        leaseExpiresAt: t.leaseExpiresAt,
                        leaseToken: t.leaseOwner == nil ? 0 : 1
                    )
                )
            }
        }
        if !releaseRuns.isEmpty {
            try await conn.query(
                """
                UPDATE tasks SET available_at = \(now)
                WHERE run_id = ANY(\(releaseRuns)::text[]) AND lease_owner IS NULL AND kind = '\(unescaped: TaskKind.startRun.rawValue)'
                """,
                logger: logger
            )
        }
        try await PostgresStore.appendAudit(conn, audit, logger: logger)
        try await PostgresStore.insertOutbox(conn, outbox, logger: logger)
        return inserted
    }
}
