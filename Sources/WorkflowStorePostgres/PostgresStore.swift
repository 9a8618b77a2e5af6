import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WorkflowPrimitive
import WorkflowStore

/// The clustered store: all state in one PostgreSQL database, shared by every `uwf serve` node.
///
/// Locking discipline, so that nodes cannot deadlock each other: every writer locks the run row first
/// (`FOR UPDATE`), then its tasks; a batch locks its runs in id order; claims lock tasks with
/// `FOR UPDATE SKIP LOCKED` and take the run with `SKIP LOCKED` too, so a claim never waits while holding locks.
/// Work that any node may take is announced with `pg_notify` on commit.
public final class PostgresStore: WorkflowStore, Service {
    public let client: PostgresClient
    public let configuration: PostgresStoreConfiguration
    private let logger: Logger
    private let channel: String
    private let inputs = RunInputCache()
    private let deadlines = OperationDeadlines()

    public var isExclusive: Bool { false }
    /// Batches lock their runs in id order and a run's task rows belong to it, so parallel committers cannot deadlock.
    public var concurrentWriters: Int { max(1, min(4, configuration.maximumConnections / 4)) }
    public var supportsNotify: Bool { true }

    public init(configuration: PostgresStoreConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        self.channel = "uwf_work_\(configuration.schema)"
    }

    /// Runs the connection pool (and the watchdog of operation deadlines) until the task is cancelled or, in a
    /// `ServiceGroup`, shut down gracefully. Nothing else works until it runs: put it first in the group, so that it
    /// stops last, after everything that uses it.
    public func run() async {
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.deadlines.run() }
                await self.client.run()
                group.cancelAll()
            }
        }
    }

    /// Runs one store operation within `configuration.operationTimeout` and reports a database that cannot be reached
    /// (refused, closed or too slow) as `unavailable`, so that callers retry and the API answers 503, not 500.
    private func guarded<T: Sendable>(
        timeout: Duration? = nil,
        _ operation: String = #function,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let timeout = timeout ?? configuration.operationTimeout
        do {
            return try await deadlines.run(
                within: timeout,
                timeoutError: {
                    WorkflowError(
                        .unavailable,
                        "the database did not answer \(operation) within \(timeout.formatted(.units(allowed: [.seconds, .milliseconds])))"
                    )
                },
                body
            )
        } catch let error as WorkflowError {
            throw error
        } catch {
            if Self.isConnectionFailure(error) {
                throw WorkflowError(.unavailable, "the database cannot be reached: \(Self.describe(error))")
            }
            throw error
        }
    }

    /// The deadline of a write of `runs` runs: the operation timeout, plus a millisecond per run beyond a thousand (a
    /// foreach of 100,000 items is one transaction and may legitimately take a while on a loaded server).
    private func timeout(forRuns runs: Int) -> Duration {
        configuration.operationTimeout + .milliseconds(max(0, runs - 1000))
    }

    /// Errors that say the database is unreachable or went away, not that a statement is wrong.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            return [transaction.beginError, transaction.closureError, transaction.commitError].contains {
                $0.map(isConnectionFailure) ?? false
            }
        }
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .listenFailed:
            return true
        case .server:
            // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return false
        }
    }

    /// A driver error as text for logs: PSQLError's own description hides everything, for fear of leaking data.
    static func describe(_ error: any Error) -> String {
        if let transaction = error as? PostgresTransactionError {
            return [transaction.beginError, transaction.closureError, transaction.commitError].compactMap { $0.map(describe) }
                .joined(separator: "; ")
        }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return "\(error.serverInfo?[.sqlState] ?? "") \(message)"
        }
        return "\(error.code)"
    }

    /// Creates the schema and applies missing migrations, under an advisory lock so nodes starting together
    /// apply each migration once.
    public func migrate() async throws {
        let schema = configuration.schema
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(schema)))", logger: logger)
            try await conn.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger)
            try await conn.query(
                "CREATE TABLE IF NOT EXISTS uwf_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger
            )
            var applied: Set<Int> = []
            for try await version in try await conn.query("SELECT version FROM uwf_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
                for statement in migration.sql { try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await conn.query(
                    "INSERT INTO uwf_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                )
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }

    /// Drops the schema and everything in it (tests only).
    public func dropSchema() async throws {
        try await client.query("DROP SCHEMA IF EXISTS \(unescaped: configuration.schema) CASCADE", logger: logger)
    }

    /// Answers within two seconds at most: readiness probes call it.
    public func ping() async throws {
        try await guarded(timeout: min(.seconds(2), configuration.operationTimeout)) { [self] in
            _ = try await client.query("SELECT 1", logger: logger).collect()
        }
    }

    // MARK: definitions

    private static let definitionColumns =
        "id, tenant_id, name, version, description, definition::text AS definition, checksum, created_by, created_at, status"

    public func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult {
        try await guarded { [self] in
            let r = params.record
            return try await client.withTransaction(logger: logger) { conn in
                let inserted = try await conn.query(
                    """
                    INSERT INTO workflow_definitions (id, tenant_id, name, version, status, description, definition, checksum, created_by, created_at)
                    VALUES (\(r.id), \(r.tenantID), \(r.name), \(r.version), 'active', \(r.description), \(r.spec.canonicalString())::jsonb,
                            \(r.checksum), \(r.createdBy), \(r.createdAt))
                    ON CONFLICT (tenant_id, name, version) DO NOTHING RETURNING id
                    """,
                    logger: logger
                ).collect()
                if !inserted.isEmpty { return .inserted(r) }
                let rows = try await conn.query(
                    "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(r.tenantID) AND name = \(r.name) AND version = \(r.version)",
                    logger: logger
                ).collect()
                guard let row = rows.first else { throw PostgresStoreError("definition vanished during insert") }
                let existing = try Self.definition(row)
                return existing.checksum == r.checksum ? .existing(existing) : .conflict(existing)
            }
        }
    }

    public func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id)",
                logger: logger
            ).collect().first.map(Self.definition)
        }
    }

    public func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord] {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(tenantID) AND name = \(name)",
                logger: logger
            ).collect().map(Self.definition)
        }
    }

    public func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions
                WHERE tenant_id = \(params.tenantID) AND (\(params.name)::text IS NULL OR name = \(params.name))
                  AND (\(params.after)::text IS NULL OR id < \(params.after))
                ORDER BY id DESC LIMIT \(params.limit)
                """,
                logger: logger
            ).collect().map(Self.definition)
        }
    }

    // MARK: runs

    private static let runColumns = """
        id, tenant_id, definition_id, workflow_name, workflow_version, status, input::text AS input, output::text AS output,
        error::text AS error, idempotency_key, parent_run_id, priority, created_at, started_at, completed_at, updated_at, next_event_seq,
        request_hash, parent_step_id, item_index, body_path, compensated, signals::text AS signals, dead_letter,
        root_run_id, key_generations::text AS key_generations
        """
    private static let stepColumns = """
        run_id, step_id, status, attempt, input::text AS input, output::text AS output, error::text AS error, state::text AS state,
        started_at, completed_at, updated_at
        """
    private static let taskColumns = "id, tenant_id, run_id, step_id, kind, available_at, priority, lease_owner, lease_expires_at, lease_token"

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
    private static func isIdempotencyViolation(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError {
            return isIdempotencyViolation(inner)
        }
        guard let error = error as? PSQLError else { return false }
        return error.serverInfo?[.sqlState] == "23505" && (error.serverInfo?[.constraintName] ?? "").contains("idempotency")
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

    public func definitionSetStatus(tenantID: String, id: String, status: DefinitionStatus) async throws -> DefinitionRecord? {
        try await guarded { [self] in
            try await client.query(
                """
                UPDATE workflow_definitions SET status = \(status.rawValue) WHERE tenant_id = \(tenantID) AND id = \(id)
                RETURNING \(unescaped: Self.definitionColumns)
                """,
                logger: logger
            ).collect().first.map { try Self.definition($0) }
        }
    }

    public func definitionDelete(tenantID: String, id: String) async throws -> DefinitionDeleteOutcome {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let exists = try await conn.query(
                    "SELECT 1 FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id) FOR UPDATE",
                    logger: logger
                ).collect()
                guard !exists.isEmpty else { return .notFound }
                var runs = 0
                for try await n in try await conn.query("SELECT count(*) FROM runs WHERE definition_id = \(id)", logger: logger).decode(Int.self) {
                    runs = n
                }
                guard runs == 0 else { return .inUse(runs: runs) }
                try await conn.query("DELETE FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id)", logger: logger)
                return .deleted
            }
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

    public func deadLetterDismiss(tenantID: String, runID: String) async throws -> Bool {
        try await guarded { [self] in
            !(try await client.query(
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

    // MARK: queue

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

    public func taskCount(runID: String?) async throws -> Int {
        try await guarded { [self] in
            let rows = try await client.query(
                "SELECT COUNT(*)::bigint FROM tasks WHERE \(runID)::text IS NULL OR run_id = \(runID)",
                logger: logger
            ).collect()
            return Int(try rows.first?.decode(Int64.self) ?? 0)
        }
    }

    // MARK: cluster

    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws {
        let channel = channel
        do {
            try await client.withConnection { conn in
                try await conn.listen(on: channel) { notifications in
                    for try await _ in notifications { onWork() }
                }
            }
        } catch  where Self.isConnectionFailure(error) {
            throw WorkflowError(.unavailable, "the database cannot be reached: \(Self.describe(error))")
        }
    }

    public func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws {
        try await guarded { [self] in
            _ = try await client.query(
                """
                INSERT INTO nodes (id, host, started_at, heartbeat_at) VALUES (\(params.id), \(params.host), \(params.startedAt), \(params.now))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
                """,
                logger: logger
            ).collect()
        }
    }

    public func nodeList() async throws -> [NodeRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT n.id, n.host, n.started_at, n.heartbeat_at,
                       (SELECT COUNT(*) FROM tasks t WHERE t.lease_owner = n.id)::bigint AS held
                FROM nodes n ORDER BY n.heartbeat_at DESC
                """,
                logger: logger
            ).collect().map { row in
                let r = row.makeRandomAccess()
                return NodeRecord(
                    id: try r["id"].decode(String.self),
                    host: try r["host"].decode(String.self),
                    startedAt: try r["started_at"].decode(Date.self),
                    heartbeatAt: try r["heartbeat_at"].decode(Date.self),
                    heldTasks: Int(try r["held"].decode(Int64.self))
                )
            }
        }
    }

    public func nodeDeleteStale(before: Date) async throws -> Int {
        try await guarded { [self] in
            try await client.query("DELETE FROM nodes WHERE heartbeat_at < \(before) RETURNING id", logger: logger).collect().count
        }
    }

    public func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool {
        try await guarded { [self] in
            let rows = try await client.query(
                """
                INSERT INTO leaders (name, owner, expires_at) VALUES (\(params.name), \(params.owner), \(params.expiresAt))
                ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
                WHERE leaders.owner = EXCLUDED.owner OR leaders.expires_at < \(params.now)
                RETURNING owner
                """,
                logger: logger
            ).collect()
            return !rows.isEmpty
        }
    }

    public func leaderResign(name: String, owner: String) async throws {
        try await guarded { [self] in
            _ = try await client.query("DELETE FROM leaders WHERE name = \(name) AND owner = \(owner)", logger: logger).collect()
        }
    }

    public func leaderGet(name: String) async throws -> LeaderRecord? {
        try await guarded { [self] in
            try await client.query("SELECT name, owner, expires_at FROM leaders WHERE name = \(name)", logger: logger).collect().first.map { row in
                let (name, owner, expiresAt) = try row.decode((String, String, Date).self)
                return LeaderRecord(name: name, owner: owner, expiresAt: expiresAt)
            }
        }
    }

    // MARK: transitions

    private func notify(_ conn: PostgresConnection) async throws {
        try await conn.query("SELECT pg_notify(\(channel), '')", logger: logger)
    }

    /// Locks the runs (in id order; `SKIP LOCKED` for claims, which must never wait) and loads them with their steps.
    /// A run whose stored state cannot be read is failed on the spot (see `quarantine`) and left out of the batch; its id
    /// is in `poisoned`.
    private func loadBatch(
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
    private func quarantine(_ conn: PostgresConnection, runID: String, reason: String, now: Date) async throws {
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

    // MARK: row mapping

    private static func json(_ text: String?) throws -> JSONValue? {
        guard let text else { return nil }
        return try JSONValue.parse(text)
    }

    private static func definition(_ row: PostgresRow) throws -> DefinitionRecord {
        let r = row.makeRandomAccess()
        return DefinitionRecord(
            id: try r["id"].decode(String.self),
            tenantID: try r["tenant_id"].decode(String.self),
            name: try r["name"].decode(String.self),
            version: try r["version"].decode(String.self),
            description: try r["description"].decode(String?.self),
            spec: try json(try r["definition"].decode(String.self)) ?? .null,
            checksum: try r["checksum"].decode(String.self),
            createdBy: try r["created_by"].decode(String?.self),
            createdAt: try r["created_at"].decode(Date.self),
            status: DefinitionStatus(rawValue: try r["status"].decode(String.self)) ?? .active
        )
    }

    /// With `inputs`, a large input parsed before is reused (a run's input never changes).
    private static func run(_ row: PostgresRow, inputs: RunInputCache? = nil) throws -> RunRecord {
        let r = row.makeRandomAccess()
        let id = try r["id"].decode(String.self)
        let inputText = try r["input"].decode(String.self)
        let input = try inputs.map { try $0.input(runID: id, text: inputText) } ?? json(inputText) ?? .null
        return RunRecord(
            id: id,
            tenantID: try r["tenant_id"].decode(String.self),
            definitionID: try r["definition_id"].decode(String.self),
            workflowName: try r["workflow_name"].decode(String.self),
            workflowVersion: try r["workflow_version"].decode(String.self),
            status: RunStatus(rawValue: try r["status"].decode(String.self)) ?? .failed,
            input: input,
            output: try json(try r["output"].decode(String?.self)),
            error: try json(try r["error"].decode(String?.self)),
            idempotencyKey: try r["idempotency_key"].decode(String?.self),
            requestHash: try r["request_hash"].decode(String?.self),
            parentRunID: try r["parent_run_id"].decode(String?.self),
            parentStepID: try r["parent_step_id"].decode(String?.self),
            itemIndex: try r["item_index"].decode(Int?.self),
            bodyPath: try r["body_path"].decode(String?.self),
            compensated: try r["compensated"].decode(Bool?.self),
            pendingSignals: PendingSignal.decode(try json(try r["signals"].decode(String?.self))),
            deadLetter: try r["dead_letter"].decode(Bool.self),
            rootRunID: try r["root_run_id"].decode(String?.self),
            keyGenerations: RunRecord.decodeGenerations(try json(try r["key_generations"].decode(String?.self))),
            priority: try r["priority"].decode(Int.self),
            createdAt: try r["created_at"].decode(Date.self),
            startedAt: try r["started_at"].decode(Date?.self),
            completedAt: try r["completed_at"].decode(Date?.self),
            updatedAt: try r["updated_at"].decode(Date.self)
        )
    }

    private static func step(_ row: PostgresRow) throws -> StepRunRecord {
        let r = row.makeRandomAccess()
        return StepRunRecord(
            runID: try r["run_id"].decode(String.self),
            stepID: try r["step_id"].decode(String.self),
            status: StepStatus(rawValue: try r["status"].decode(String.self)) ?? .failed,
            attempt: try r["attempt"].decode(Int.self),
            input: try json(try r["input"].decode(String?.self)),
            output: try json(try r["output"].decode(String?.self)),
            error: try json(try r["error"].decode(String?.self)),
            state: StepState(json: try json(try r["state"].decode(String?.self))),
            startedAt: try r["started_at"].decode(Date?.self),
            completedAt: try r["completed_at"].decode(Date?.self),
            updatedAt: try r["updated_at"].decode(Date.self)
        )
    }

    private static func event(_ row: PostgresRow) throws -> RunEventRecord {
        let r = row.makeRandomAccess()
        return RunEventRecord(
            runID: try r["run_id"].decode(String.self),
            seq: try r["seq"].decode(Int.self),
            type: try r["type"].decode(String.self),
            stepID: try r["step_id"].decode(String?.self),
            data: try json(try r["data"].decode(String.self)) ?? .null,
            at: try r["at"].decode(Date.self)
        )
    }

    private static func task(_ row: PostgresRow) throws -> TaskRecord {
        let r = row.makeRandomAccess()
        return TaskRecord(
            id: try r["id"].decode(Int64.self),
            tenantID: try r["tenant_id"].decode(String.self),
            runID: try r["run_id"].decode(String.self),
            stepID: try r["step_id"].decode(String?.self),
            kind: TaskKind(rawValue: try r["kind"].decode(String.self)) ?? .step,
            availableAt: try r["available_at"].decode(Date.self),
            priority: try r["priority"].decode(Int.self),
            leaseOwner: try r["lease_owner"].decode(String?.self),
            leaseExpiresAt: try r["lease_expires_at"].decode(Date?.self),
            leaseToken: try r["lease_token"].decode(Int64.self)
        )
    }
}
