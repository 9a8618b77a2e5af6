import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// The task queue: claims, leases, counts.
extension SQLiteStore {
    public func taskClaim(_ params: TaskClaimParams) async throws -> TaskClaimResult {
        try await pool.write { db in
            let now = SQLiteCoding.ms(params.now)
            var rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(SQLiteCoding.taskColumns) FROM tasks WHERE lease_owner IS NULL AND available_at <= ?
                    ORDER BY priority DESC, fair_at, id LIMIT ?
                    """,
                arguments: [now, params.limit]
            )
            if rows.count < params.limit {
                rows += try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(SQLiteCoding.taskColumns) FROM tasks WHERE lease_owner IS NOT NULL AND lease_expires_at < ? AND available_at <= ?
                        ORDER BY priority DESC, available_at, id LIMIT ?
                        """,
                    arguments: [now, now, params.limit - rows.count]
                )
            }
            var claimed: [ClaimedTask] = []
            for row in rows {
                var task = SQLiteCoding.task(row)
                let previous = task
                task.leaseOwner = params.owner
                task.leaseExpiresAt = params.leaseExpiresAt
                task.leaseToken += 1
                try db.run(
                    sql: "UPDATE tasks SET lease_owner = ?, lease_expires_at = ?, lease_token = ? WHERE id = ?",
                    arguments: [task.leaseOwner, SQLiteCoding.ms(params.leaseExpiresAt), task.leaseToken, task.id]
                )
                let loaded: RunSnapshot?
                do {
                    loaded = try Self.snapshot(db, runID: task.runID, inputs: inputs)
                } catch let error as JSONSyntaxError {
                    // A poison run must not stop this node from claiming everyone else's work.
                    try Self.quarantine(db, runID: task.runID, reason: "\(error)", now: params.now)
                    continue
                }
                guard let snapshot = loaded else {
                    try db.run(sql: "DELETE FROM tasks WHERE id = ?", arguments: [task.id])
                    continue
                }
                let mutation = params.onClaim(snapshot, previous)
                _ = try Self.apply(db, mutation, to: snapshot, now: params.now)
                guard !mutation.removes(task) else { continue }  // the claim itself finished the work (a run timeout)
                let step = task.stepID.flatMap { id in mutation.steps.last { $0.stepID == id } ?? snapshot.steps[id] }
                claimed.append(ClaimedTask(task: task, run: mutation.run ?? snapshot.run, step: step))
            }
            let next = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(t) FROM (
                        SELECT MIN(fair_at) AS t FROM tasks WHERE lease_owner IS NULL
                        UNION ALL
                        SELECT MIN(lease_expires_at) FROM tasks WHERE lease_owner IS NOT NULL AND lease_owner != ?
                    )
                    """,
                arguments: [params.owner]
            )
            return TaskClaimResult(claimed: claimed, nextAvailableAt: SQLiteCoding.date(next))
        }
    }

    public func leaseRenew(_ params: LeaseRenewParams) async throws -> Set<Int64> {
        try await pool.write { db in
            try db.run(
                sql: "UPDATE tasks SET lease_expires_at = ? WHERE lease_owner = ?",
                arguments: [SQLiteCoding.ms(params.leaseExpiresAt), params.owner]
            )
            return Set(try Int64.fetchAll(db, sql: "SELECT id FROM tasks WHERE lease_owner = ?", arguments: [params.owner]))
        }
    }

    public func leaseRelease(owner: String, taskIDs: [Int64]) async throws {
        guard !taskIDs.isEmpty else { return }
        try await pool.write { db in
            for id in taskIDs {
                try db.run(
                    sql: "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND lease_owner = ?",
                    arguments: [id, owner]
                )
            }
        }
    }

    public func leaseExpireOthers(owner: String, now: Date) async throws -> Int {
        try await pool.write { db in
            try db.run(
                sql: "UPDATE tasks SET lease_expires_at = ? WHERE lease_owner IS NOT NULL AND lease_owner != ?",
                arguments: [SQLiteCoding.ms(now) - 1, owner]
            )
            return db.changesCount
        }
    }

    public func queueStats(now: Date, limit: Int) async throws -> QueueStats {
        let now = SQLiteCoding.ms(now)
        return try await pool.read { db in
            // Both halves use a partial index (tasks_available, tasks_leased); the count stops at `limit`.
            let ready = try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM (
                        SELECT 1 FROM tasks WHERE lease_owner IS NULL AND available_at <= ?1
                        UNION ALL
                        SELECT 1 FROM tasks WHERE lease_owner IS NOT NULL AND lease_expires_at < ?1 AND available_at <= ?1
                        LIMIT ?2)
                    """,
                arguments: [now, limit]
            )
            let oldest = try Int64.fetchOne(
                db,
                sql: """
                    SELECT MIN(available_at) FROM (
                        SELECT MIN(available_at) AS available_at FROM tasks WHERE lease_owner IS NULL AND available_at <= ?1
                        UNION ALL
                        SELECT MIN(available_at) FROM tasks WHERE lease_owner IS NOT NULL AND lease_expires_at < ?1 AND available_at <= ?1)
                    """,
                arguments: [now]
            )
            return QueueStats(ready: ready ?? 0, oldestAvailableAt: oldest.map(SQLiteCoding.date))
        }
    }

    public func taskCount(runID: String?) async throws -> Int {
        try await pool.read { db in
            if let runID {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run_id = ?", arguments: [runID]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks") ?? 0
        }
    }
}
