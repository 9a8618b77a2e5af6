import Foundation
import WorkflowPrimitive

/// Registers a definition unless `(tenant, name, version)` exists.
public struct DefinitionInsertParams: Sendable {
    public var record: DefinitionRecord
    /// Written with the version when it is inserted (not when it already existed).
    public var audit: [AuditRecord]
    /// Written with the version when it is inserted (`definition.activated` when it starts active).
    public var outbox: [OutboxEvent]
    /// A new name or version must fit the tenant's quotas (`quota_exceeded`); an existing one is answered as before.
    public var quotas: StoreQuotas
    public init(record: DefinitionRecord, audit: [AuditRecord] = [], outbox: [OutboxEvent] = [], quotas: StoreQuotas = .default) {
        self.record = record
        self.audit = audit
        self.outbox = outbox
        self.quotas = quotas
    }
}

/// The result of ``WorkflowStore/definitionInsert(_:)``.
public enum DefinitionInsertResult: Sendable {
    case inserted(DefinitionRecord)
    /// The same name and version with the same checksum was already registered.
    case existing(DefinitionRecord)
    /// The same name and version is registered with different content.
    case conflict(DefinitionRecord)
}

/// Pages through definitions, newest first.
public struct DefinitionListParams: Sendable {
    public var tenantID: String
    public var name: String?
    public var limit: Int
    /// The id of the last definition of the previous page.
    public var after: String?

    public init(tenantID: String = defaultTenantID, name: String? = nil, limit: Int = 50, after: String? = nil) {
        self.tenantID = tenantID
        self.name = name
        self.limit = limit
        self.after = after
    }
}

/// Creates a run with its first transition (initial steps, events and tasks) in one transaction.
public struct RunInsertParams: Sendable {
    public var run: RunRecord
    public var initial: RunMutation

    public init(run: RunRecord, initial: RunMutation) {
        self.run = run
        self.initial = initial
    }
}

/// Pages through runs, newest first.
public struct RunListParams: Sendable {
    public var tenantID: String
    public var status: RunStatus?
    public var definitionIDs: [String]?
    /// Only the children of this run; without it, `foreach` items are left out (they are listed under their parent).
    public var parentRunID: String?
    public var limit: Int
    /// The id of the last run of the previous page (run ids sort by creation time).
    public var before: String?

    public init(
        tenantID: String = defaultTenantID,
        status: RunStatus? = nil,
        definitionIDs: [String]? = nil,
        parentRunID: String? = nil,
        limit: Int = 50,
        before: String? = nil
    ) {
        self.tenantID = tenantID
        self.status = status
        self.definitionIDs = definitionIDs
        self.parentRunID = parentRunID
        self.limit = limit
        self.before = before
    }
}

/// Claims available tasks for one node.
public struct TaskClaimParams: Sendable {
    public var owner: String
    public var limit: Int
    public var leaseExpiresAt: Date
    public var now: Date
    /// Computes the writes that go with claiming a task of this run (step → EXECUTING, run → RUNNING, …).
    /// Called inside the claim's transaction with the run locked.
    public var onClaim: @Sendable (RunSnapshot, TaskRecord) -> RunMutation

    public init(
        owner: String,
        limit: Int,
        leaseExpiresAt: Date,
        now: Date,
        onClaim: @escaping @Sendable (RunSnapshot, TaskRecord) -> RunMutation
    ) {
        self.owner = owner
        self.limit = limit
        self.leaseExpiresAt = leaseExpiresAt
        self.now = now
        self.onClaim = onClaim
    }
}

/// A claimed task with the run and step as they are after the claim's writes.
public struct ClaimedTask: Sendable {
    public var task: TaskRecord
    public var run: RunRecord
    public var step: StepRunRecord?

    public init(task: TaskRecord, run: RunRecord, step: StepRunRecord?) {
        self.task = task
        self.run = run
        self.step = step
    }
}

/// The queue's backlog (`TaskStore.queueStats`).
public struct QueueStats: Sendable, Equatable {
    /// Due tasks without a current lease, up to the limit asked for.
    public var ready: Int
    /// When the oldest of them fell due; nil when none waits.
    public var oldestAvailableAt: Date?

    public init(ready: Int, oldestAvailableAt: Date?) {
        self.ready = ready
        self.oldestAvailableAt = oldestAvailableAt
    }
}

/// The result of a claim: what was claimed, and when the next unclaimed task becomes available.
public struct TaskClaimResult: Sendable {
    public var claimed: [ClaimedTask]
    /// The earliest `availableAt` among tasks left unclaimed, so the caller can sleep until then.
    public var nextAvailableAt: Date?

    public init(claimed: [ClaimedTask], nextAvailableAt: Date?) {
        self.claimed = claimed
        self.nextAvailableAt = nextAvailableAt
    }
}

/// Extends every lease held by one owner.
public struct LeaseRenewParams: Sendable {
    public var owner: String
    public var leaseExpiresAt: Date
    public var now: Date

    public init(owner: String, leaseExpiresAt: Date, now: Date) {
        self.owner = owner
        self.leaseExpiresAt = leaseExpiresAt
        self.now = now
    }
}
