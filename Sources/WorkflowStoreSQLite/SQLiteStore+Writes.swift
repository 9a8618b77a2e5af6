import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Writing a transition: inserting runs, loading snapshots, applying mutations, quarantining unreadable runs.
extension SQLiteStore {
    /// Fails a run whose stored rows cannot be read (a poison run), without reading them: every transition of it
    /// would fail again, and a claim that keeps failing would stop the node from claiming anyone's work.
    static func quarantine(_ db: Database, runID: String, reason: String, now: Date) throws {
        let error: JSONValue = [
            "code": "internal_error", "message": .string("the run's stored state cannot be read (\(reason.prefix(200))); it was failed"),
        ]
        let ms = SQLiteCoding.ms(now)
        try db.execute(
            sql: """
                UPDATE runs SET status = 'FAILED', error = ?, completed_at = ?, updated_at = ?,
                    dead_letter = CASE WHEN parent_run_id IS NULL THEN 1 ELSE 0 END
                WHERE id = ? AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
                """,
            arguments: [SQLiteCoding.text(error), ms, ms, runID]
        )
        let failed = db.changesCount > 0
        // Keep what is readable and wrap what is not, so the run can be shown (and its input read) from now on.
        func repair(_ column: String) -> String {
            "\(column) = CASE WHEN \(column) IS NULL OR json_valid(\(column)) THEN \(column) ELSE json_object('unreadable', substr(\(column), 1, 1000)) END"
        }
        try db.execute(
            sql: "UPDATE runs SET \(["input", "output", "error", "signals", "key_generations"].map(repair).joined(separator: ", ")) WHERE id = ?",
            arguments: [runID]
        )
        try db.execute(
            sql: "UPDATE step_runs SET \(["input", "output", "error", "state"].map(repair).joined(separator: ", ")) WHERE run_id = ?",
            arguments: [runID]
        )
        try db.execute(sql: "DELETE FROM tasks WHERE run_id = ? AND kind NOT IN ('notify_parent', 'cancel_children')", arguments: [runID])
        guard failed else { return }
        try db.execute(
            sql: """
                INSERT INTO run_events (run_id, seq, tenant_id, type, step_id, data, at)
                SELECT id, next_event_seq, tenant_id, 'run_failed', NULL, ?, ? FROM runs WHERE id = ?
                """,
            arguments: [SQLiteCoding.text(JSONValue.object(["status": "FAILED", "error": error])), ms, runID]
        )
        try db.execute(sql: "UPDATE runs SET next_event_seq = next_event_seq + 1 WHERE id = ?", arguments: [runID])
    }

    static func insertRun(_ db: Database, _ r: RunRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO runs (id, tenant_id, definition_id, workflow_name, workflow_version, status, input, output, error,
                    idempotency_key, request_hash, parent_run_id, parent_step_id, item_index, body_path, compensated, signals,
                    dead_letter, priority, created_at, started_at, completed_at, updated_at, root_run_id, created_by, trace_parent,
                    next_event_seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                """,
            arguments: [
                r.id, r.tenantID, r.definitionID, r.workflowName, r.workflowVersion, r.status.rawValue,
                SQLiteCoding.text(r.input), SQLiteCoding.text(r.output), SQLiteCoding.text(r.error), r.idempotencyKey,
                r.requestHash, r.parentRunID, r.parentStepID, r.itemIndex, r.bodyPath, r.compensated.map { $0 ? 1 : 0 },
                SQLiteCoding.text(PendingSignal.encode(r.pendingSignals)), r.deadLetter ? 1 : 0,
                r.priority, SQLiteCoding.ms(r.createdAt), SQLiteCoding.ms(r.startedAt),
                SQLiteCoding.ms(r.completedAt), SQLiteCoding.ms(r.updatedAt), r.rootRunID, r.createdBy, r.traceParent,
            ]
        )
    }

    static func snapshot(_ db: Database, runID: String, inputs: RunInputCache) throws -> RunSnapshot? {
        guard let row = try Row.fetchOne(try db.cached("SELECT \(SQLiteCoding.runColumns) FROM runs WHERE id = ?"), arguments: [runID]) else {
            return nil
        }
        let run = try SQLiteCoding.run(row, inputs: inputs)
        var steps: [String: StepRunRecord] = [:]
        for stepRow in try Row.fetchAll(try db.cached("SELECT \(SQLiteCoding.stepColumns) FROM step_runs WHERE run_id = ?"), arguments: [runID]) {
            let step = try SQLiteCoding.step(stepRow)
            steps[step.stepID] = step
        }
        return RunSnapshot(run: run, steps: steps, nextEventSeq: row[SQLiteCoding.runNextEventSeq])
    }

    /// Writes a mutation; returns the tasks it inserted.
    static func apply(_ db: Database, _ m: RunMutation, to snapshot: RunSnapshot, now: Date) throws -> [TaskRecord] {
        let runID = snapshot.run.id
        let tenant = snapshot.run.tenantID
        let nowMs = SQLiteCoding.ms(now)
        if let r = m.run {
            try db.run(
                sql: """
                    UPDATE runs SET status = ?, output = ?, error = ?, started_at = ?, completed_at = ?, updated_at = ?,
                        priority = ?, compensated = ?, signals = ?, dead_letter = ?, key_generations = ?, next_event_seq = ?
                    WHERE id = ?
                    """,
                arguments: [
                    r.status.rawValue, SQLiteCoding.text(r.output), SQLiteCoding.text(r.error), SQLiteCoding.ms(r.startedAt),
                    SQLiteCoding.ms(r.completedAt), SQLiteCoding.ms(r.updatedAt), r.priority, r.compensated.map { $0 ? 1 : 0 },
                    SQLiteCoding.text(PendingSignal.encode(r.pendingSignals)), r.deadLetter ? 1 : 0,
                    SQLiteCoding.text(RunRecord.encodeGenerations(r.keyGenerations)), snapshot.nextEventSeq + m.events.count, runID,
                ]
            )
        } else if !m.events.isEmpty {
            try db.run(
                sql: "UPDATE runs SET next_event_seq = ? WHERE id = ?",
                arguments: [snapshot.nextEventSeq + m.events.count, runID]
            )
        }
        for id in m.deleteSteps {
            try db.run(sql: "DELETE FROM step_runs WHERE run_id = ? AND step_id = ?", arguments: [runID, id])
        }
        for s in m.steps {
            try db.run(
                sql: """
                    INSERT OR REPLACE INTO step_runs (run_id, step_id, tenant_id, status, attempt, input, output, error, state,
                        started_at, completed_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    runID, s.stepID, tenant, s.status.rawValue, s.attempt, SQLiteCoding.text(s.input), SQLiteCoding.text(s.output),
                    SQLiteCoding.text(s.error), SQLiteCoding.text(s.state?.json), SQLiteCoding.ms(s.startedAt),
                    SQLiteCoding.ms(s.completedAt), SQLiteCoding.ms(s.updatedAt),
                ]
            )
        }
        try appendAudit(db, m.audit)
        try insertOutbox(db, m.outbox)
        for (offset, e) in m.events.enumerated() {
            try db.run(
                sql: "INSERT INTO run_events (run_id, seq, tenant_id, type, step_id, data, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [runID, snapshot.nextEventSeq + offset, tenant, e.type, e.stepID, SQLiteCoding.text(e.data), nowMs]
            )
        }
        switch m.deleteTasks {
        case .none: break
        case .all:
            let kinds = TaskKind.removedWithRun
            try db.run(
                sql: "DELETE FROM tasks WHERE run_id = ? AND kind IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ", ")))",
                arguments: StatementArguments([runID] + kinds)
            )
        case .steps(let ids):
            for id in ids { try db.run(sql: "DELETE FROM tasks WHERE run_id = ? AND step_id = ?", arguments: [runID, id]) }
        }
        var inserted: [TaskRecord] = []
        // The queue's head places the queued steps (RunMutation.queueTimes).
        let head =
            m.newTasks.contains { $0.leaseOwner == nil && $0.kind == .step }
            ? try Int64.fetchOne(db.cached("SELECT fair_at FROM tasks WHERE lease_owner IS NULL ORDER BY priority DESC, fair_at, id LIMIT 1"))
            : nil
        for (t, fairAt) in zip(m.newTasks, m.queueTimes(now: now, head: SQLiteCoding.date(head))) {
            let token: Int64 = t.leaseOwner == nil ? 0 : 1
            try db.run(
                sql: """
                    INSERT INTO tasks (tenant_id, run_id, step_id, kind, available_at, priority, lease_owner, lease_expires_at, lease_token, created_at,
                                       fair_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    tenant, runID, t.stepID, t.kind.rawValue, SQLiteCoding.ms(t.availableAt), t.priority, t.leaseOwner,
                    SQLiteCoding.ms(t.leaseExpiresAt), token, nowMs, SQLiteCoding.ms(fairAt),
                ]
            )
            inserted.append(
                TaskRecord(
                    id: db.lastInsertedRowID,
                    tenantID: tenant,
                    runID: runID,
                    stepID: t.stepID,
                    kind: t.kind,
                    availableAt: t.availableAt,
                    priority: t.priority,
                    leaseOwner: t.leaseOwner,
                    leaseExpiresAt: t.leaseExpiresAt,
                    leaseToken: token
                )
            )
        }
        for child in m.spawn {
            inserted += try insert(db, child, now: now)
        }
        for child in m.releaseRuns {
            try db.run(
                sql: "UPDATE tasks SET available_at = ? WHERE run_id = ? AND lease_owner IS NULL AND kind = ?",
                arguments: [nowMs, child, TaskKind.startRun.rawValue]
            )
        }
        return inserted
    }
}
