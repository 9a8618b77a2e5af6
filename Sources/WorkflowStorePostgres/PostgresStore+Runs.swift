import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Runs, steps, history, idempotency keys, dead letters, and transitions (written set-based by PostgresBatchWriter).
extension PostgresStore {
    static let runColumns = """
        id, tenant_id, definition_id, workflow_name, workflow_version, status, input::text AS input, output::text AS output,
        error::text AS error, idempotency_key, parent_run_id, priority, created_at, started_at, completed_at, updated_at, next_event_seq,
        request_hash, parent_step_id, item_index, body_path, compensated, signals::text AS signals, dead_letter,
        root_run_id, key_generations::text AS key_generations, created_by, trace_parent
        """

    static let stepColumns = """
        run_id, step_id, status, attempt, input::text AS input, output::text AS output, error::text AS error, state::text AS state,
        started_at, completed_at, updated_at
        """

    static let taskColumns = "id, tenant_id, run_id, step_id, kind, available_at, priority, lease_owner, lease_expires_at, lease_token"

    public func runInsert(_ params: [RunInsertParams], now: Date) async throws -> [[TaskRecord]] {
        try await guarded(timeout: timeout(forRuns: params.reduce(params.count) { $0 + $1.initial.spawnedRuns })) { [self] in
            guard !params.isEmpty else { return [] }
            do {
                return try await client.withTransaction(logger: logger) { conn in
                    var writer = PostgresBatchWriter()
                    for (index, p) in params.enumerated() {
                        writer.insert(p, owner: index, now: now)
                    }
                    let inserted = try await writer.flush(conn, now: now, logger: logger)
                    if writer.announce { try await notify(conn) }
                    return params.indices.map { inserted[$0] ?? [] }
                }
            } catch {
                if Self.isIdempotencyViolation(error) {
                    throw WorkflowError(.idempotencyKeyTaken, "another request created a run with this idempotency key first")
                }
                throw error
            }
        }
    }

    /// A unique violation of the idempotency key index, bare or wrapped by `withTransaction`.
    static func isIdempotencyViolation(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError {
            return isIdempotencyViolation(inner)
        }
        guard let error = error as? PSQLError else { return false }
        return error.serverInfo?[.sqlState] == "23505" && (error.serverInfo?[.constraintName] ?? "").contains("idempotency")
    }

    public func approvalsPending(
        tenantID: String,
        after: (runID: String, stepID: String)?,
        limit: Int
    ) async throws -> [(run: RunRecord, step: StepRunRecord)] {
        try await guarded { [self] in
            let steps = try await client.query(
                """
                SELECT \(unescaped: Self.stepColumns) FROM step_runs
                WHERE tenant_id = \(tenantID) AND status = 'WAITING' AND state ? 'approval'
                  AND (run_id, step_id) > (\(after?.runID ?? ""), \(after?.stepID ?? ""))
                ORDER BY run_id, step_id LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.step)
            let ids = Array(Set(steps.map(\.runID)))
            var runs: [String: RunRecord] = [:]
            if !ids.isEmpty {
                for row in try await client.query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = ANY(\(ids)::text[])", logger: logger)
                    .collect()
                {
                    let run = try Self.run(row, inputs: inputs)
                    runs[run.id] = run
                }
            }
            return steps.compactMap { step in runs[step.runID].map { ($0, step) } }
        }
    }

    public func runGet(tenantID: String, id: String) async throws -> RunRecord? {
        try await guarded { [self] in
            try await client.query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE tenant_id = \(tenantID) AND id = \(id)", logger: logger)
                .collect().first.map { try Self.run($0, inputs: inputs) }
        }
    }

    public func runList(_ params: RunListParams) async throws -> [RunRecord] {
        try await guarded { [self] in
            if let ids = params.definitionIDs, ids.isEmpty { return [] }
            return try await client.query(
                """
                SELECT \(unescaped: Self.runColumns) FROM runs
                WHERE tenant_id = \(params.tenantID) AND (\(params.status?.rawValue)::text IS NULL OR status = \(params.status?.rawValue))
                  AND (\(params.definitionIDs)::text[] IS NULL OR definition_id = ANY(\(params.definitionIDs)::text[]))
                  AND (CASE WHEN \(params.parentRunID)::text IS NULL THEN body_path IS NULL ELSE parent_run_id = \(params.parentRunID) END)
                  AND (\(params.before)::text IS NULL OR id < \(params.before))
                ORDER BY id DESC LIMIT \(params.limit)
                """,
                logger: logger
            ).collect().map { try Self.run($0) }
        }
    }

    public func stepList(runID: String) async throws -> [StepRunRecord] {
        try await guarded { [self] in
            try await client.query("SELECT \(unescaped: Self.stepColumns) FROM step_runs WHERE run_id = \(runID)", logger: logger)
                .collect().map(Self.step)
        }
    }

    public func runChildren(parentRunID: String, stepID: String?, unfinishedOnly: Bool) async throws -> [RunRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.runColumns) FROM runs
                WHERE parent_run_id = \(parentRunID) AND (\(stepID)::text IS NULL OR parent_step_id = \(stepID))
                  AND (NOT \(unfinishedOnly) OR status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
                ORDER BY item_index, id
                """,
                logger: logger
            ).collect().map { try Self.run($0) }
        }
    }

    public func runTreeCount(rootRunID: String) async throws -> Int {
        try await guarded { [self] in
            for try await count in try await client.query("SELECT count(*) FROM runs WHERE root_run_id = \(rootRunID)", logger: logger)
                .decode(Int.self)
            {
                return count
            }
            return 0
        }
    }

    public func runTreeUnfinished(rootRunID: String, limit: Int) async throws -> [RunRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.runColumns) FROM runs
                WHERE root_run_id = \(rootRunID) AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED') ORDER BY id LIMIT \(limit)
                """,
                logger: logger
            ).collect().map { try Self.run($0) }
        }
    }

    public func runFindByIdempotencyKey(tenantID: String, key: String) async throws -> RunRecord? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.runColumns) FROM runs WHERE tenant_id = \(tenantID) AND idempotency_key = \(key)",
                logger: logger
            ).collect().first.map { try Self.run($0) }
        }
    }

    public func idempotencyExpire(before: Date) async throws -> Int {
        try await guarded { [self] in
            try await client.query(
                """
                UPDATE runs SET idempotency_key = NULL, request_hash = NULL
                WHERE idempotency_key IS NOT NULL AND created_at < \(before) RETURNING id
                """,
                logger: logger
            ).collect().count
        }
    }

    public func idempotencyRelease(tenantID: String, key: String, before: Date) async throws -> Bool {
        try await guarded { [self] in
            try await client.query(
                """
                UPDATE runs SET idempotency_key = NULL, request_hash = NULL
                WHERE tenant_id = \(tenantID) AND idempotency_key = \(key) AND created_at < \(before) RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func deadLetterList(tenantID: String, before: String?, limit: Int) async throws -> [RunRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.runColumns) FROM runs
                WHERE tenant_id = \(tenantID) AND dead_letter AND (\(before)::text IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """,
                logger: logger
            ).collect().map { try Self.run($0) }
        }
    }

    public func deadLetterDismiss(tenantID: String, runID: String, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            !(try await conn.query(
                "UPDATE runs SET dead_letter = FALSE WHERE tenant_id = \(tenantID) AND id = \(runID) AND dead_letter RETURNING id",
                logger: logger
            ).collect().isEmpty)
        }
    }

    public func eventList(runID: String, afterSeq: Int, limit: Int) async throws -> [RunEventRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT run_id, seq, type, step_id, data::text AS data, at FROM run_events
                WHERE run_id = \(runID) AND seq > \(afterSeq) ORDER BY seq LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.event)
        }
    }

    public func runTransitions(_ requests: [RunTransitionRequest], now: Date) async throws -> [RunTransitionOutcome] {
        // The runs a transition spawns (a foreach's items) are unknown until it is decided: allow twice the time.
        try await guarded(timeout: configuration.operationTimeout * 2) { [self] in
            let runIDs = Array(Set(requests.map(\.runID))).sorted()
            let fenceIDs = requests.compactMap { $0.fence?.taskID }
            return try await client.withTransaction(logger: logger) { conn in
                // Lock every run of the batch in id order (nodes' batches cannot deadlock), then read their steps and fences.
                var (writer, poisoned) = try await loadBatch(conn, runIDs: runIDs, skipLocked: false, now: now)
                var tokens: [Int64: (token: Int64, runID: String)] = [:]
                if !fenceIDs.isEmpty {
                    for row in try await conn.query(
                        "SELECT id, lease_token, run_id FROM tasks WHERE id = ANY(\(fenceIDs)::int8[]) FOR UPDATE",
                        logger: logger
                    ).collect() {
                        let (id, token, runID) = try row.decode((Int64, Int64, String).self)
                        tokens[id] = (token, runID)
                    }
                }

                var outcomes: [RunTransitionOutcome] = []
                var mutations: [Int: RunMutation] = [:]
                for (index, request) in requests.enumerated() {
                    guard let snapshot = writer.snapshot(of: request.runID) else {
                        outcomes.append(
                            poisoned.contains(request.runID)
                                ? .rejected(WorkflowError(.internalError, "run \(request.runID) cannot be read and was failed"))
                                : .runNotFound
                        )
                        continue
                    }
                    if let fence = request.fence {
                        guard let held = tokens[fence.taskID], held.token == fence.leaseToken, held.runID == (request.fenceRunID ?? request.runID)
                        else {
                            outcomes.append(.fenced)
                            continue
                        }
                        tokens[fence.taskID] = nil  // consumed: a duplicate in the same batch is fenced too
                    }
                    do {
                        let mutation = try request.decide(snapshot)
                        if let fence = request.fence { writer.consume(fence: fence.taskID) }
                        writer.apply(mutation, runID: request.runID, owner: index, now: now)
                        mutations[index] = mutation
                        outcomes.append(.applied(mutation, tasks: []))
                    } catch {
                        outcomes.append(.rejected(error))
                    }
                }
                let inserted = try await writer.flush(conn, now: now, logger: logger)
                if writer.announce { try await notify(conn) }
                return outcomes.enumerated().map { index, outcome in
                    guard case .applied = outcome, let mutation = mutations[index] else { return outcome }
                    return .applied(mutation, tasks: inserted[index] ?? [])
                }
            }
        }
    }

    func notify(_ conn: PostgresConnection) async throws {
        try await conn.query("SELECT pg_notify(\(channel), '')", logger: logger)
    }

    /// Locks the runs (in id order; `SKIP LOCKED` for claims, which must never wait) and loads them with their steps.
    /// A run whose stored state cannot be read is failed on the spot (see `quarantine`) and left out of the batch; its id
    /// is in `poisoned`.
    func loadBatch(
        _ conn: PostgresConnection,
        runIDs: [String],
        skipLocked: Bool,
        now: Date
    ) async throws -> (writer: PostgresBatchWriter, poisoned: Set<String>) {
        var writer = PostgresBatchWriter()
        guard !runIDs.isEmpty else { return (writer, []) }
        var poisoned: [String: String] = [:]
        // NO KEY UPDATE: inserting tasks or children that reference a run (a foreach releasing an item) takes only a
        // KEY SHARE lock on it, which this does not block, so parents and children never wait on each other.
        let lock = skipLocked ? "FOR NO KEY UPDATE SKIP LOCKED" : "FOR NO KEY UPDATE"
        for row in try await conn.query(
            "SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = ANY(\(runIDs)::text[]) ORDER BY id \(unescaped: lock)",
            logger: logger
        ).collect() {
            do {
                writer.load(
                    RunSnapshot(
                        run: try Self.run(row, inputs: inputs),
                        steps: [:],
                        nextEventSeq: try row.makeRandomAccess()["next_event_seq"].decode(Int.self)
                    )
                )
            } catch let error as JSONSyntaxError {
                poisoned[try row.makeRandomAccess()["id"].decode(String.self)] = "\(error)"
            }
        }
        var stepsByRun: [String: [String: StepRunRecord]] = [:]
        for row in try await conn.query(
            "SELECT \(unescaped: Self.stepColumns) FROM step_runs WHERE run_id = ANY(\(runIDs)::text[])",
            logger: logger
        ).collect() {
            do {
                let step = try Self.step(row)
                stepsByRun[step.runID, default: [:]][step.stepID] = step
            } catch let error as JSONSyntaxError {
                poisoned[try row.makeRandomAccess()["run_id"].decode(String.self)] = "\(error)"
            }
        }
        for (runID, steps) in stepsByRun {
            if var snapshot = writer.snapshot(of: runID) {
                snapshot.steps = steps
                writer.load(snapshot)
            }
        }
        guard !poisoned.isEmpty else { return (writer, []) }
        // Rebuild the batch without them: nothing may be written from a half-read run.
        var clean = PostgresBatchWriter()
        for id in runIDs where poisoned[id] == nil {
            if let snapshot = writer.snapshot(of: id) { clean.load(snapshot) }
        }
        for (runID, reason) in poisoned.sorted(by: { $0.key < $1.key }) {
            try await quarantine(conn, runID: runID, reason: reason, now: now)
        }
        return (clean, Set(poisoned.keys))
    }

    /// Fails a run whose stored rows cannot be read (a poison run: JSON that PostgreSQL accepts but uwf's strict reader
    /// refuses, such as a number beyond double range), without reading it as a run: every transition of it would fail
    /// again, and a claim that keeps failing would stop this node from claiming anyone's work. Unreadable values are
    /// wrapped as `{"unreadable": "<first 1000 characters>"}`, so the run can be shown from now on.
    func quarantine(_ conn: PostgresConnection, runID: String, reason: String, now: Date) async throws {
        logger.error("a run's stored state cannot be read; failing it", metadata: ["run_id": "\(runID)", "reason": "\(reason.prefix(200))"])
        let error = JSONValue.object([
            "code": "internal_error", "message": .string("the run's stored state cannot be read (\(reason.prefix(200))); it was failed"),
        ]).canonicalString()
        func repair(_ table: String, _ key: String, _ columns: [String]) async throws {
            for row in try await conn.query(
                PostgresQuery(
                    unsafeSQL: "SELECT ctid::text, \(columns.map { "\($0)::text" }.joined(separator: ", ")) FROM \(table) WHERE \(key) = $1",
                    binds: {
                        var b = PostgresBindings()
                        b.append(runID)
                        return b
                    }()
                ),
                logger: logger
            ).collect() {
                let cells = row.makeRandomAccess()
                let ctid = try cells[0].decode(String.self)
                for (index, column) in columns.enumerated() {
                    guard let text = try cells[index + 1].decode(String?.self), (try? JSONValue.parse(text)) == nil else { continue }
                    var binds = PostgresBindings()
                    binds.append(String(text.prefix(1000)))
                    binds.append(ctid)
                    try await conn.query(
                        PostgresQuery(
                            unsafeSQL: "UPDATE \(table) SET \(column) = jsonb_build_object('unreadable', $1::text) WHERE ctid = $2::tid",
                            binds: binds
                        ),
                        logger: logger
                    )
                }
            }
        }
        try await repair("runs", "id", ["input", "output", "error", "signals", "key_generations"])
        try await repair("step_runs", "run_id", ["input", "output", "error", "state"])
        let failed = try await conn.query(
            """
            UPDATE runs SET status = 'FAILED', error = \(error)::jsonb, completed_at = \(now), updated_at = \(now),
                dead_letter = (parent_run_id IS NULL), next_event_seq = next_event_seq + 1
            WHERE id = \(runID) AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
            RETURNING tenant_id, next_event_seq - 1
            """,
            logger: logger
        ).collect()
        try await conn.query(
            "DELETE FROM tasks WHERE run_id = \(runID) AND kind NOT IN ('notify_parent', 'cancel_children')",
            logger: logger
        )
        guard let row = failed.first else { return }
        let (tenant, seq) = try row.decode((String, Int).self)
        let data = JSONValue.object(["status": "FAILED", "error": try JSONValue.parse(error)]).canonicalString()
        try await conn.query(
            """
            INSERT INTO run_events (run_id, seq, tenant_id, type, step_id, data, at)
            VALUES (\(runID), \(seq), \(tenant), 'run_failed', NULL, \(data)::jsonb, \(now))
            """,
            logger: logger
        )
    }
}

/// Retention.
extension PostgresStore {
    public func runPurge(createdBefore: Date, tenantID: String?, limit: Int) async throws -> Int {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                // Run ids are time-ordered: the primary key finds the old ones.
                let roots = try await conn.query(
                    """
                    SELECT id FROM runs r WHERE id < \(RecordID.make(now: createdBefore)) AND parent_run_id IS NULL
                        AND status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND NOT dead_letter
                        AND (\(tenantID)::text IS NULL OR tenant_id = \(tenantID))
                        AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.root_run_id = r.id AND c.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
                    ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """,
                    logger: logger
                ).collect().map { try $0.decode(String.self) }
                guard !roots.isEmpty else { return 0 }
                let descendants = try await conn.query("SELECT id FROM runs WHERE root_run_id = ANY(\(roots)::text[])", logger: logger)
                    .collect().map { try $0.decode(String.self) }
                let all = descendants + roots
                try await conn.query("DELETE FROM tasks WHERE run_id = ANY(\(all)::text[])", logger: logger)
                try await conn.query("DELETE FROM run_events WHERE run_id = ANY(\(all)::text[])", logger: logger)
                try await conn.query("DELETE FROM step_runs WHERE run_id = ANY(\(all)::text[])", logger: logger)
                try await conn.query("DELETE FROM runs WHERE id = ANY(\(all)::text[])", logger: logger)
                return roots.count
            }
        }
    }
}
