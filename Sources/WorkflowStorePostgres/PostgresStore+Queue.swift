import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// The task queue: claims (FOR UPDATE SKIP LOCKED), leases, counts.
extension PostgresStore {
    public func taskClaim(_ params: TaskClaimParams) async throws -> TaskClaimResult {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                var rows = try await conn.query(
                    """
                    SELECT \(unescaped: Self.taskColumns) FROM tasks
                    WHERE lease_owner IS NULL AND available_at <= \(params.now)
                    ORDER BY priority DESC, fair_at, id LIMIT \(params.limit) FOR UPDATE SKIP LOCKED
                    """,
                    logger: logger
                ).collect()
                if rows.count < params.limit {
                    rows += try await conn.query(
                        """
                        SELECT \(unescaped: Self.taskColumns) FROM tasks
                        WHERE lease_owner IS NOT NULL AND lease_expires_at < \(params.now) AND available_at <= \(params.now)
                        ORDER BY priority DESC, available_at, id LIMIT \(params.limit - rows.count) FOR UPDATE SKIP LOCKED
                        """,
                        logger: logger
                    ).collect()
                }
                let candidates = try rows.map(Self.task)
                // Runs busy in another transaction are left for the next claim rather than waited for.
                var (writer, _) = try await loadBatch(
                    conn,
                    runIDs: Array(Set(candidates.map(\.runID))).sorted(),
                    skipLocked: true,
                    now: params.now
                )
                var claimed: [ClaimedTask] = []
                var leased: [Int64] = []
                for (index, previous) in candidates.enumerated() {
                    guard let snapshot = writer.snapshot(of: previous.runID) else { continue }
                    var task = previous
                    task.leaseOwner = params.owner
                    task.leaseExpiresAt = params.leaseExpiresAt
                    task.leaseToken += 1
                    let mutation = params.onClaim(snapshot, previous)
                    writer.apply(mutation, runID: previous.runID, owner: index, now: params.now)
                    guard !mutation.removes(task) else { continue }  // the claim itself finished the work (a run timeout)
                    leased.append(task.id)
                    let step = task.stepID.flatMap { id in mutation.steps.last { $0.stepID == id } ?? snapshot.steps[id] }
                    claimed.append(ClaimedTask(task: task, run: mutation.run ?? snapshot.run, step: step))
                }
                if !leased.isEmpty {
                    try await conn.query(
                        """
                        UPDATE tasks SET lease_owner = \(params.owner), lease_expires_at = \(params.leaseExpiresAt), lease_token = lease_token + 1
                        WHERE id = ANY(\(leased)::int8[])
                        """,
                        logger: logger
                    )
                }
                _ = try await writer.flush(conn, now: params.now, logger: logger)
                let next = try await conn.query(
                    """
                    SELECT LEAST(
                        (SELECT MIN(fair_at) FROM tasks WHERE lease_owner IS NULL),
                        (SELECT MIN(lease_expires_at) FROM tasks WHERE lease_owner IS NOT NULL AND lease_owner <> \(params.owner)))
                    """,
                    logger: logger
                ).collect().first.flatMap { try? $0.decode(Date?.self) }
                return TaskClaimResult(claimed: claimed, nextAvailableAt: next)
            }
        }
    }

    public func leaseRenew(_ params: LeaseRenewParams) async throws -> Set<Int64> {
        try await guarded { [self] in
            // Rows a transition is completing right now are skipped, not waited for: waiting could deadlock with a
            // transition that holds their run and wants another of this node's tasks. They still count as held below,
            // because the plain read sees the committed state, in which they are still ours.
            try await client.query(
                """
                UPDATE tasks SET lease_expires_at = \(params.leaseExpiresAt)
                WHERE id IN (SELECT id FROM tasks WHERE lease_owner = \(params.owner) FOR UPDATE SKIP LOCKED)
                """,
                logger: logger
            )
            var held: Set<Int64> = []
            for try await id in try await client.query("SELECT id FROM tasks WHERE lease_owner = \(params.owner)", logger: logger).decode(Int64.self)
            {
                held.insert(id)
            }
            return held
        }
    }

    public func leaseRelease(owner: String, taskIDs: [Int64]) async throws {
        try await guarded { [self] in
            guard !taskIDs.isEmpty else { return }
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query(
                    "UPDATE tasks SET lease_owner = NULL, lease_expires_at = NULL WHERE id = ANY(\(taskIDs)::bigint[]) AND lease_owner = \(owner)",
                    logger: logger
                )
                try await notify(conn)
            }
        }
    }

    public func leaseExpireOthers(owner: String, now: Date) async throws -> Int {
        try await guarded { [self] in
            let rows = try await client.query(
                """
                UPDATE tasks SET lease_expires_at = \(now.addingTimeInterval(-0.001))
                WHERE lease_owner IS NOT NULL AND lease_owner <> \(owner) RETURNING id
                """,
                logger: logger
            ).collect()
            return rows.count
        }
    }

    public func queueStats(now: Date, limit: Int) async throws -> QueueStats {
        try await guarded { [self] in
            let rows = try await client.query(
                """
                SELECT (SELECT COUNT(*) FROM (
                            SELECT 1 FROM tasks WHERE lease_owner IS NULL AND available_at <= \(now)
                            UNION ALL
                            SELECT 1 FROM tasks WHERE lease_owner IS NOT NULL AND lease_expires_at < \(now) AND available_at <= \(now)
                            LIMIT \(limit)) AS due)::bigint,
                       LEAST(
                           (SELECT MIN(available_at) FROM tasks WHERE lease_owner IS NULL AND available_at <= \(now)),
                           (SELECT MIN(available_at) FROM tasks
                            WHERE lease_owner IS NOT NULL AND lease_expires_at < \(now) AND available_at <= \(now)))
                """,
                logger: logger
            ).collect()
            guard let row = rows.first else { return QueueStats(ready: 0, oldestAvailableAt: nil) }
            let (ready, oldest) = try row.decode((Int64, Date?).self)
            return QueueStats(ready: Int(ready), oldestAvailableAt: oldest)
        }
    }

    public func taskCount(runID: String?) async throws -> Int {
        try await guarded { [self] in
            let rows = try await client.query(
                "SELECT COUNT(*)::bigint FROM tasks WHERE \(runID)::text IS NULL OR run_id = \(runID)",
                logger: logger
            ).collect()
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }
}
