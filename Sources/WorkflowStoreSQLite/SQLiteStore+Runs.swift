import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Runs, steps, history, idempotency keys, dead letters, and transitions.
extension SQLiteStore {
    public func runInsert(_ params: [RunInsertParams], now: Date) async throws -> [[TaskRecord]] {
        do {
            return try await pool.write { db in
                // The starts' audit entries are linked in one go (one read and one write of the chain's head).
                var audit: [AuditRecord] = []
                let tasks = try params.map { p in
                    var p = p
                    audit += p.initial.audit
                    p.initial.audit = []
                    return try Self.insert(db, p, now: now)
                }
                try Self.appendAudit(db, audit)
                return tasks
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT && (error.message ?? "").contains("idempotency_key") {
            throw WorkflowError(.idempotencyKeyTaken, "another request created a run with this idempotency key first")
        }
    }

    static func insert(_ db: Database, _ p: RunInsertParams, now: Date) throws -> [TaskRecord] {
        try insertRun(db, p.run)
        let snapshot = RunSnapshot(run: p.run, steps: [:], nextEventSeq: 1)
        return try apply(db, p.initial, to: snapshot, now: now)
    }

    public func runGet(tenantID: String, id: String) async throws -> RunRecord? {
        try await pool.read { db in
            try Row.fetchOne(try db.cached("SELECT \(SQLiteCoding.runColumns) FROM runs WHERE tenant_id = ? AND id = ?"), arguments: [tenantID, id])
                .map { try SQLiteCoding.run($0, inputs: inputs) }
        }
    }

    public func runList(_ params: RunListParams) async throws -> [RunRecord] {
        try await pool.read { db in
            var sql = "SELECT \(SQLiteCoding.runColumns) FROM runs WHERE tenant_id = ?"
            var arguments: StatementArguments = [params.tenantID]
            if let status = params.status {
                sql += " AND status = ?"
                arguments += [status.rawValue]
            }
            if let parent = params.parentRunID {
                sql += " AND parent_run_id = ?"
                arguments += [parent]
            } else {
                sql += " AND body_path IS NULL"
            }
            if let ids = params.definitionIDs {
                if ids.isEmpty { return [] }
                sql += " AND definition_id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ",")))"
                arguments += StatementArguments(ids)
            }
            if let before = params.before {
                sql += " AND id < ?"
                arguments += [before]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [params.limit]
            return try Row.fetchAll(try db.cached(sql), arguments: arguments).map { try SQLiteCoding.run($0) }
        }
    }

    public func stepList(runID: String) async throws -> [StepRunRecord] {
        try await pool.read { db in
            try Row.fetchAll(try db.cached("SELECT \(SQLiteCoding.stepColumns) FROM step_runs WHERE run_id = ?"), arguments: [runID]).map(
                SQLiteCoding.step
            )
        }
    }

    public func approvalsPending(
        tenantID: String,
        after: (runID: String, stepID: String)?,
        limit: Int
    ) async throws -> [(run: RunRecord, step: StepRunRecord)] {
        try await pool.read { db in
            let steps = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteCoding.stepColumns) FROM step_runs
                    WHERE tenant_id = ? AND status = 'WAITING' AND state LIKE '{"approval":%' AND (run_id, step_id) > (?, ?)
                    ORDER BY run_id, step_id LIMIT ?
                    """,
                arguments: [tenantID, after?.runID ?? "", after?.stepID ?? "", limit]
            ).map(SQLiteCoding.step)
            var runs: [String: RunRecord] = [:]
            for id in Set(steps.map(\.runID)) {
                runs[id] = try Row.fetchOne(db, sql: "SELECT \(SQLiteCoding.runColumns) FROM runs WHERE id = ?", arguments: [id]).map {
                    try SQLiteCoding.run($0)
                }
            }
            return steps.compactMap { step in runs[step.runID].map { ($0, step) } }
        }
    }

    public func runChildren(parentRunID: String, stepID: String?, unfinishedOnly: Bool) async throws -> [RunRecord] {
        try await pool.read { db in
            var sql = "SELECT \(SQLiteCoding.runColumns) FROM runs WHERE parent_run_id = ?"
            var arguments: StatementArguments = [parentRunID]
            if let stepID {
                sql += " AND parent_step_id = ?"
                arguments += [stepID]
            }
            if unfinishedOnly { sql += " AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')" }
            sql += " ORDER BY item_index, id"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { try SQLiteCoding.run($0) }
        }
    }

    public func runTreeCount(rootRunID: String) async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM runs WHERE root_run_id = ?", arguments: [rootRunID]) ?? 0
        }
    }

    public func runTreeUnfinished(rootRunID: String, limit: Int) async throws -> [RunRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteCoding.runColumns) FROM runs WHERE root_run_id = ? AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
                    ORDER BY id LIMIT ?
                    """,
                arguments: [rootRunID, limit]
            ).map { try SQLiteCoding.run($0) }
        }
    }

    public func runFindByIdempotencyKey(tenantID: String, key: String) async throws -> RunRecord? {
        try await pool.read { db in
            try Row.fetchOne(
                try db.cached("SELECT \(SQLiteCoding.runColumns) FROM runs WHERE tenant_id = ? AND idempotency_key = ?"),
                arguments: [tenantID, key]
            ).map { try SQLiteCoding.run($0) }
        }
    }

    public func idempotencyExpire(before: Date) async throws -> Int {
        try await pool.write { db in
            try db.run(
                sql: "UPDATE runs SET idempotency_key = NULL, request_hash = NULL WHERE idempotency_key IS NOT NULL AND created_at < ?",
                arguments: [SQLiteCoding.ms(before)]
            )
            return db.changesCount
        }
    }

    public func idempotencyRelease(tenantID: String, key: String, before: Date) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: """
                    UPDATE runs SET idempotency_key = NULL, request_hash = NULL
                    WHERE tenant_id = ? AND idempotency_key = ? AND created_at < ?
                    """,
                arguments: [tenantID, key, SQLiteCoding.ms(before)]
            )
            return db.changesCount > 0
        }
    }

    public func deadLetterList(tenantID: String, before: String?, limit: Int) async throws -> [RunRecord] {
        try await pool.read { db in
            var sql = "SELECT \(SQLiteCoding.runColumns) FROM runs WHERE tenant_id = ? AND dead_letter = 1"
            var arguments: StatementArguments = [tenantID]
            if let before {
                sql += " AND id < ?"
                arguments += [before]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { try SQLiteCoding.run($0) }
        }
    }

    public func deadLetterDismiss(tenantID: String, runID: String, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.run(sql: "UPDATE runs SET dead_letter = 0 WHERE tenant_id = ? AND id = ? AND dead_letter = 1", arguments: [tenantID, runID])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func eventList(runID: String, afterSeq: Int, limit: Int) async throws -> [RunEventRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM run_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [runID, afterSeq, limit]
            ).map(SQLiteCoding.event)
        }
    }

    public func runTransitions(_ requests: [RunTransitionRequest], now: Date) async throws -> [RunTransitionOutcome] {
        try await pool.write { db in
            var outcomes: [RunTransitionOutcome] = []
            outcomes.reserveCapacity(requests.count)
            for request in requests {
                var outcome: RunTransitionOutcome = .runNotFound
                try db.inSavepoint {
                    if let fence = request.fence {
                        try db.run(
                            sql: "DELETE FROM tasks WHERE id = ? AND lease_token = ? AND run_id = ?",
                            arguments: [fence.taskID, fence.leaseToken, request.fenceRunID ?? request.runID]
                        )
                        if db.changesCount == 0 {
                            outcome = .fenced
                            return .rollback
                        }
                    }
                    let loaded: RunSnapshot?
                    do {
                        loaded = try Self.snapshot(db, runID: request.runID, inputs: inputs)
                    } catch let error as JSONSyntaxError {
                        try Self.quarantine(db, runID: request.runID, reason: "\(error)", now: now)
                        outcome = .rejected(WorkflowError(.internalError, "run \(request.runID) cannot be read and was failed"))
                        return .commit
                    }
                    guard let snapshot = loaded else {
                        outcome = .runNotFound
                        return .rollback
                    }
                    let mutation: RunMutation
                    do {
                        mutation = try request.decide(snapshot)
                    } catch {
                        outcome = .rejected(error)
                        return .rollback
                    }
                    let tasks = try Self.apply(db, mutation, to: snapshot, now: now)
                    outcome = .applied(mutation, tasks: tasks)
                    return .commit
                }
                outcomes.append(outcome)
            }
            return outcomes
        }
    }
}

/// Retention.
extension SQLiteStore {
    public func runPurge(createdBefore: Date, tenantID: String?, limit: Int) async throws -> Int {
        try await pool.write { db in
            // Run ids are time-ordered: the primary key finds the old ones.
            var arguments: StatementArguments = [RecordID.make(now: createdBefore)]
            var sql = """
                SELECT id FROM runs r WHERE id < ? AND parent_run_id IS NULL AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')
                    AND dead_letter = 0
                """
            if let tenantID {
                sql += " AND tenant_id = ?"
                arguments += [tenantID]
            }
            sql += """
                 AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.root_run_id = r.id AND c.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
                ORDER BY id LIMIT ?
                """
            arguments += [limit]
            let roots = try String.fetchAll(db, sql: sql, arguments: arguments)
            guard !roots.isEmpty else { return 0 }
            let marks = Array(repeating: "?", count: roots.count).joined(separator: ", ")
            let descendants = try String.fetchAll(
                db,
                sql: "SELECT id FROM runs WHERE root_run_id IN (\(marks))",
                arguments: StatementArguments(roots)
            )
            let all = descendants + roots
            var index = 0
            while index < all.count {
                let chunk = Array(all[index..<min(all.count, index + 500)])
                index += chunk.count
                let list = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                for table in ["tasks", "run_events", "step_runs"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE run_id IN (\(list))", arguments: StatementArguments(chunk))
                }
                try db.execute(sql: "DELETE FROM runs WHERE id IN (\(list))", arguments: StatementArguments(chunk))
            }
            return roots.count
        }
    }
}
