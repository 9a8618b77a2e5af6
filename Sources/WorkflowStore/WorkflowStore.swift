import Foundation
import WorkflowPrimitive

/// A storage driver: definitions, runs, steps, history and the task queue, with the transactions the engine needs.
///
/// Only this package's drivers conform (SQLite now, PostgreSQL next). Every method that writes commits before it
/// returns, so whatever a caller reports after it survives a crash. Every state change of a run goes through
/// ``runTransitions(_:now:)`` or ``taskClaim(_:)``, which write the run, its steps, its history and its tasks in one
/// transaction. The contract every driver must pass lives in `WorkflowStoreTesting`.
public protocol WorkflowStore: DefinitionStore, RunStore, QueueStore, ClusterStore, IdentityStore, AuditStore, GovernanceStore,
    ScheduleStore, EventStore
{
    /// True when one process owns the database (embedded SQLite): leases left by an earlier process can be
    /// expired at start-up instead of waiting for them to time out.
    var isExclusive: Bool { get }

    /// How many write transactions may usefully run at once: 1 for SQLite (one writer), several for PostgreSQL.
    /// The engine runs that many committers.
    var concurrentWriters: Int { get }

    /// Answers when the database answers (readiness probe).
    func ping() async throws
}

/// Versions of workflow definitions, per tenant.
public protocol DefinitionStore: Sendable {
    func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult
    func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord?
    /// Every version registered under `name`, in no particular order.
    func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord]
    func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord]
    /// Moves a version through its lifecycle if it is still where the caller saw it.
    func definitionUpdate(_ update: DefinitionUpdate) async throws -> DefinitionUpdateOutcome
    /// Erases a version that no run refers to.
    func definitionDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> DefinitionDeleteOutcome
}

/// Runs, their steps and history, and the one way they change: a transition written in one transaction.
///
/// What a driver must do around each request of `runTransitions` (the engine decides; the driver only writes):
/// 1. with the request's run locked (a row lock, or the only writer), delete the fencing task if the request has a
///    fence (`fenceRunID ?? runID`, matching id and lease token); if none was deleted, the outcome is `.fenced` and
///    nothing else happens — `decide` is not called;
/// 2. load the snapshot (run, steps, next event number); a missing run is `.runNotFound`; a run whose stored JSON
///    cannot be read is failed in place (quarantined) and the outcome is `.rejected`;
/// 3. call `decide` exactly once; if it throws, roll this request back (fence included) and answer `.rejected`;
/// 4. write the whole mutation — run, deleted and upserted steps, numbered events, task deletions then insertions,
///    spawned runs with their first transitions, released runs — and answer `.applied` with the inserted tasks.
/// Requests are independent: one request's rejection never undoes another's writes in the same batch.
public protocol RunStore: Sendable {
    func runInsert(_ params: [RunInsertParams], now: Date) async throws -> [[TaskRecord]]
    func runGet(tenantID: String, id: String) async throws -> RunRecord?
    func runList(_ params: RunListParams) async throws -> [RunRecord]
    func stepList(runID: String) async throws -> [StepRunRecord]
    /// The children a step of `parentRunID` started (every child of the run when `stepID` is nil), by item index then id.
    func runChildren(parentRunID: String, stepID: String?, unfinishedOnly: Bool) async throws -> [RunRecord]
    /// How many runs descend from the top-level run `rootRunID` (the root itself not counted).
    func runTreeCount(rootRunID: String) async throws -> Int
    /// Up to `limit` unfinished descendants of the top-level run `rootRunID`, oldest first.
    func runTreeUnfinished(rootRunID: String, limit: Int) async throws -> [RunRecord]
    /// The run created with this idempotency key, if the key is still held.
    func runFindByIdempotencyKey(tenantID: String, key: String) async throws -> RunRecord?
    /// Frees the idempotency keys of runs created before `before`; returns how many (a leader duty).
    func idempotencyExpire(before: Date) async throws -> Int
    /// Frees one tenant's idempotency key if its run was created before `before` (an expired key met on the request
    /// path; the leader frees the rest in bulk); false when the key is not held or still current.
    func idempotencyRelease(tenantID: String, key: String, before: Date) async throws -> Bool
    /// Deletes up to `limit` finished top-level runs created before `createdBefore` (of one tenant, or all), with their
    /// descendants, steps, history and tasks; runs on the dead-letter list and trees with an unfinished run stay.
    /// Returns how many top-level runs were deleted (retention: a leader duty, and `uwf purge`).
    func runPurge(createdBefore: Date, tenantID: String?, limit: Int) async throws -> Int
    /// Failed top-level runs neither retried nor dismissed, most recently failed first.
    func deadLetterList(tenantID: String, before: String?, limit: Int) async throws -> [RunRecord]
    /// Takes a run off the dead-letter list; false when it was not on it.
    func deadLetterDismiss(tenantID: String, runID: String, audit: [AuditRecord]) async throws -> Bool
    func eventList(runID: String, afterSeq: Int, limit: Int) async throws -> [RunEventRecord]
    /// `approval` steps waiting for decisions in a tenant, with their runs, by run id then step id, after the pair
    /// `after` (a cursor).
    func approvalsPending(
        tenantID: String,
        after: (runID: String, stepID: String)?,
        limit: Int
    ) async throws -> [(run: RunRecord, step: StepRunRecord)]

    /// Applies transitions to runs, many in one transaction (group commit). Each request locks its run, checks its
    /// fence, calls `decide` with the snapshot and writes the result; a rejected or fenced request writes nothing.
    func runTransitions(_ requests: [RunTransitionRequest], now: Date) async throws -> [RunTransitionOutcome]
}

/// The durable task queue and its leases.
public protocol QueueStore: Sendable {
    /// Leases up to `limit` available tasks (never leased, or whose lease expired), highest priority and oldest first,
    /// and applies each one's `onClaim` writes in the same transaction.
    func taskClaim(_ params: TaskClaimParams) async throws -> TaskClaimResult
    /// Extends the leases of every task `owner` holds; returns the ids it still holds.
    func leaseRenew(_ params: LeaseRenewParams) async throws -> Set<Int64>
    /// Gives back leases `owner` holds on these tasks, so any node may claim them at once.
    func leaseRelease(owner: String, taskIDs: [Int64]) async throws
    /// Expires every lease not held by `owner` (only meaningful when the store is exclusive).
    func leaseExpireOthers(owner: String, now: Date) async throws -> Int
    /// Counts tasks by state, for health and tests.
    func taskCount(runID: String?) async throws -> Int
    /// The queue's backlog for the metrics: tasks due at `now` that no current lease holds (counted up to `limit`), and
    /// when the oldest of them fell due.
    func queueStats(now: Date, limit: Int) async throws -> QueueStats
}

/// The nodes of a cluster: heartbeats, notifications of new work, and leader election for singleton duties.
public protocol ClusterStore: Sendable {
    /// True when other processes can signal new work (PostgreSQL `LISTEN/NOTIFY`); otherwise nodes rely on polling,
    /// which is all a single-process store needs.
    var supportsNotify: Bool { get }
    /// Calls `onWork` whenever another node commits work that any node may claim; returns when the task is cancelled.
    func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws
    /// Inserts or refreshes this node's row.
    func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws
    /// Every known node with the number of tasks it holds, most recently seen first.
    func nodeList() async throws -> [NodeRecord]
    /// Forgets nodes not seen since `before`; returns how many.
    func nodeDeleteStale(before: Date) async throws -> Int
    /// Takes the named leadership if it is free or expired, or extends it if `owner` holds it.
    /// Returns true when `owner` holds it afterwards.
    func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool
    /// Gives leadership up at once (graceful shutdown), so another node need not wait for it to expire.
    func leaderResign(name: String, owner: String) async throws
    func leaderGet(name: String) async throws -> LeaderRecord?
}

extension WorkflowStore {
    public func definitionDelete(tenantID: String, id: String) async throws -> DefinitionDeleteOutcome {
        try await definitionDelete(tenantID: tenantID, id: id, audit: [])
    }

    public func deadLetterDismiss(tenantID: String, runID: String) async throws -> Bool {
        try await deadLetterDismiss(tenantID: tenantID, runID: runID, audit: [])
    }
}
