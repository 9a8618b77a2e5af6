import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded store: one SQLite file in WAL mode, owned by one process.
///
/// Opening takes an exclusive lock on `<path>.lock`, so a second `uwf serve` on the same data directory fails
/// at once instead of corrupting the queue; in exchange leases left by a crashed predecessor can be expired at start.
public final class SQLiteStore: WorkflowStore {
    private let pool: DatabasePool
    private let lockDescriptor: Int32
    private let inputs = RunInputCache()
    public let configuration: SQLiteStoreConfiguration

    public var isExclusive: Bool { true }
    public var concurrentWriters: Int { 1 }

    public init(configuration: SQLiteStoreConfiguration) throws {
        self.configuration = configuration
        let url = URL(fileURLWithPath: configuration.path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)

        let fd = open(configuration.path + ".lock", O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw SQLiteStoreError("cannot open lock file \(configuration.path).lock") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw SQLiteStoreError("database \(configuration.path) is in use by another uwf process")
        }
        lockDescriptor = fd

        var config = Configuration()
        config.maximumReaderCount = configuration.maximumReaderCount
        config.busyMode = .timeout(configuration.busyTimeoutSeconds)
        let synchronous = configuration.synchronous.rawValue
        let cacheKiB = configuration.pageCacheKiB
        config.prepareDatabase { db in
            try db.run(sql: "PRAGMA synchronous = \(synchronous)")
            try db.run(sql: "PRAGMA cache_size = -\(cacheKiB)")  // negative: KiB rather than pages
            try db.run(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            try SQLiteSchema.migrator().migrate(pool)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        try? pool.close()
        close(lockDescriptor)
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: definitions

    public func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult {
        let r = params.record
        return try await pool.write { db in
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT * FROM workflow_definitions WHERE tenant_id = ? AND name = ? AND version = ?",
                arguments: [r.tenantID, r.name, r.version]
            ) {
                let existing = try SQLiteCoding.definition(row)
                return existing.checksum == r.checksum ? .existing(existing) : .conflict(existing)
            }
            try db.run(
                sql: """
                    INSERT INTO workflow_definitions (id, tenant_id, name, version, status, description, definition, checksum, created_by, created_at)
                    VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    r.id, r.tenantID, r.name, r.version, r.description, SQLiteCoding.text(r.spec), r.checksum, r.createdBy,
                    SQLiteCoding.ms(r.createdAt),
                ]
            )
            return .inserted(r)
        }
    }

    public func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord? {
        try await pool.read { db in
            try Row.fetchOne(try db.cached("SELECT * FROM workflow_definitions WHERE tenant_id = ? AND id = ?"), arguments: [tenantID, id])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord] {
        try await pool.read { db in
            try Row.fetchAll(try db.cached("SELECT * FROM workflow_definitions WHERE tenant_id = ? AND name = ?"), arguments: [tenantID, name])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await pool.read { db in
            var sql = "SELECT * FROM workflow_definitions WHERE tenant_id = ?"
            var arguments: StatementArguments = [params.tenantID]
            if let name = params.name {
                sql += " AND name = ?"
                arguments += [name]
            }
            if let after = params.after {
                sql += " AND id < ?"
                arguments += [after]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [params.limit]
            return try Row.fetchAll(try db.cached(sql), arguments: arguments).map(SQLiteCoding.definition)
        }
    }

    // MARK: runs

    public func runInsert(_ params: [RunInsertParams], now: Date) async throws -> [[TaskRecord]] {
        do {
            return try await pool.write { db in
                try params.map { p in try Self.insert(db, p, now: now) }
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT && (error.message ?? "").contains("idempotency_key") {
            throw WorkflowError(.idempotencyKeyTaken, "another request created a run with this idempotency key first")
        }
    }

    private static func insert(_ db: Database, _ p: RunInsertParams, now: Date) throws -> [TaskRecord] {
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

    public func definitionSetStatus(tenantID: String, id: String, status: DefinitionStatus) async throws -> DefinitionRecord? {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE workflow_definitions SET status = ? WHERE tenant_id = ? AND id = ?",
                arguments: [status.rawValue, tenantID, id]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionDelete(tenantID: String, id: String) async throws -> DefinitionDeleteOutcome {
        try await pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id]) != nil
            else { return .notFound }
            let runs = try Int.fetchOne(db, sql: "SELECT count(*) FROM runs WHERE definition_id = ?", arguments: [id]) ?? 0
            guard runs == 0 else { return .inUse(runs: runs) }
            try db.execute(sql: "DELETE FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            return .deleted
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

    public func deadLetterDismiss(tenantID: String, runID: String) async throws -> Bool {
        try await pool.write { db in
            try db.run(sql: "UPDATE runs SET dead_letter = 0 WHERE tenant_id = ? AND id = ? AND dead_letter = 1", arguments: [tenantID, runID])
            return db.changesCount > 0
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

    // MARK: queue

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

    public func taskCount(runID: String?) async throws -> Int {
        try await pool.read { db in
            if let runID {
                return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks WHERE run_id = ?", arguments: [runID]) ?? 0
            }
            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tasks") ?? 0
        }
    }

    // MARK: cluster

    public var supportsNotify: Bool { false }

    /// One process owns the file, so there is nobody to hear from: waits until cancelled.
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws {
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }

    public func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws {
        try await pool.write { db in
            try db.run(
                sql: """
                    INSERT INTO nodes (id, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
                    """,
                arguments: [params.id, params.host, SQLiteCoding.ms(params.startedAt), SQLiteCoding.ms(params.now)]
            )
        }
    }

    public func nodeList() async throws -> [NodeRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT n.*, (SELECT COUNT(*) FROM tasks t WHERE t.lease_owner = n.id) AS held
                    FROM nodes n ORDER BY heartbeat_at DESC
                    """
            ).map { row in
                NodeRecord(
                    id: row["id"],
                    host: row["host"],
                    startedAt: SQLiteCoding.date(row["started_at"] as Int64),
                    heartbeatAt: SQLiteCoding.date(row["heartbeat_at"] as Int64),
                    heldTasks: row["held"]
                )
            }
        }
    }

    public func nodeDeleteStale(before: Date) async throws -> Int {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM nodes WHERE heartbeat_at < ?", arguments: [SQLiteCoding.ms(before)])
            return db.changesCount
        }
    }

    public func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: """
                    INSERT INTO leaders (name, owner, expires_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                    WHERE leaders.owner = excluded.owner OR leaders.expires_at < ?
                    """,
                arguments: [params.name, params.owner, SQLiteCoding.ms(params.expiresAt), SQLiteCoding.ms(params.now)]
            )
            return db.changesCount > 0
        }
    }

    public func leaderResign(name: String, owner: String) async throws {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM leaders WHERE name = ? AND owner = ?", arguments: [name, owner])
        }
    }

    public func leaderGet(name: String) async throws -> LeaderRecord? {
        try await pool.read { db in
            try Row.fetchOne(try db.cached("SELECT * FROM leaders WHERE name = ?"), arguments: [name]).map {
                LeaderRecord(name: $0["name"], owner: $0["owner"], expiresAt: SQLiteCoding.date($0["expires_at"] as Int64))
            }
        }
    }

    // MARK: writing a transition

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

    private static func insertRun(_ db: Database, _ r: RunRecord) throws {
        try db.execute(
            sql: """
                INSERT INTO runs (id, tenant_id, definition_id, workflow_name, workflow_version, status, input, output, error,
                    idempotency_key, request_hash, parent_run_id, parent_step_id, item_index, body_path, compensated, signals,
                    dead_letter, priority, created_at, started_at, completed_at, updated_at, root_run_id, next_event_seq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                """,
            arguments: [
                r.id, r.tenantID, r.definitionID, r.workflowName, r.workflowVersion, r.status.rawValue,
                SQLiteCoding.text(r.input), SQLiteCoding.text(r.output), SQLiteCoding.text(r.error), r.idempotencyKey,
                r.requestHash, r.parentRunID, r.parentStepID, r.itemIndex, r.bodyPath, r.compensated.map { $0 ? 1 : 0 },
                SQLiteCoding.text(PendingSignal.encode(r.pendingSignals)), r.deadLetter ? 1 : 0,
                r.priority, SQLiteCoding.ms(r.createdAt), SQLiteCoding.ms(r.startedAt),
                SQLiteCoding.ms(r.completedAt), SQLiteCoding.ms(r.updatedAt), r.rootRunID,
            ]
        )
    }

    private static func snapshot(_ db: Database, runID: String, inputs: RunInputCache) throws -> RunSnapshot? {
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
    private static func apply(_ db: Database, _ m: RunMutation, to snapshot: RunSnapshot, now: Date) throws -> [TaskRecord] {
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

/// A failure of the SQLite driver itself (not of a query), such as a database already in use.
public struct SQLiteStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Database {
    /// Runs a statement through GRDB's per-connection statement cache: the hot statements are compiled once.
    fileprivate func run(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    fileprivate func cached(_ sql: String) throws -> Statement {
        try cachedStatement(sql: sql)
    }
}
