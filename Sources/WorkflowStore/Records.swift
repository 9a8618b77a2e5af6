import Foundation
import WorkflowPrimitive

/// The tenant every row belongs to until multi-tenancy is switched on.
public let defaultTenantID = "default"

/// What deleting a definition version did.
public enum DefinitionDeleteOutcome: Sendable, Hashable {
    case deleted
    case notFound
    /// Runs of the version exist: it can be retired, not erased (their history refers to it).
    case inUse(runs: Int)
}

/// A registered workflow definition.
public struct DefinitionRecord: Sendable, Hashable {
    public var id: String
    public var tenantID: String
    public var name: String
    public var version: String
    public var description: String?
    /// The `definition` object as registered (steps, output, timeout).
    public var spec: JSONValue
    /// SHA-256 of the canonical JSON of name, version, description and spec.
    public var checksum: String
    public var createdBy: String?
    public var createdAt: Date
    /// Only active and deprecated versions start runs (runs already going finish on any).
    public var status: DefinitionStatus
    /// Who approved the version's activation so far (under a tenant's approval policy).
    public var approvals: [DefinitionApproval]

    public init(
        id: String,
        tenantID: String,
        name: String,
        version: String,
        description: String?,
        spec: JSONValue,
        checksum: String,
        createdBy: String?,
        createdAt: Date,
        status: DefinitionStatus = .active,
        approvals: [DefinitionApproval] = []
    ) {
        self.status = status
        self.approvals = approvals
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.version = version
        self.description = description
        self.spec = spec
        self.checksum = checksum
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

/// One execution of a workflow definition.
public struct RunRecord: Sendable, Hashable {
    public var id: String
    public var tenantID: String
    public var definitionID: String
    public var workflowName: String
    public var workflowVersion: String
    public var status: RunStatus
    public var input: JSONValue
    public var output: JSONValue?
    /// `{"code", "message", "step_id"?}` when the run failed or was cancelled.
    public var error: JSONValue?
    public var idempotencyKey: String?
    /// SHA-256 of the request that created the run with `idempotencyKey`: the same key with another body is refused.
    public var requestHash: String?
    public var parentRunID: String?
    /// The step of the parent run that started this one (a `sub_workflow` or `foreach` step).
    public var parentStepID: String?
    /// The item this run executes, when it is one item of a `foreach`.
    public var itemIndex: Int?
    /// For a `foreach` item: the path of `foreach` steps (joined by `/`) whose nested steps this run executes.
    public var bodyPath: String?
    /// After a failure with compensations: whether every compensation succeeded.
    public var compensated: Bool?
    /// Signals received before a step waited for them, oldest first.
    public var pendingSignals: [PendingSignal]
    /// A top-level run that failed and has been neither retried nor dismissed.
    public var deadLetter: Bool
    /// The top-level run of this run's tree (nil for a top-level run): tree-wide limits and cancellation use it.
    public var rootRunID: String?
    /// Per step id, how many times the step's effect was settled and a retry in place intends a new one (its
    /// `Idempotency-Key` then ends in `/<generation>`); absent means 0. See docs/dsl.md, "Idempotency keys".
    public var keyGenerations: [String: Int]
    /// Who started the run (`key:<id>` or a token subject), nil for runs the engine started (children, items).
    public var createdBy: String?
    /// The W3C `traceparent` of the run's trace (its start span), when a tracer was installed: every step attempt's
    /// span joins that trace, on whichever node it runs. Children carry their parent's.
    public var traceParent: String?
    public var priority: Int
    public var createdAt: Date
    public var startedAt: Date?
    public var completedAt: Date?
    public var updatedAt: Date

    public init(
        id: String,
        tenantID: String,
        definitionID: String,
        workflowName: String,
        workflowVersion: String,
        status: RunStatus,
        input: JSONValue,
        output: JSONValue? = nil,
        error: JSONValue? = nil,
        idempotencyKey: String? = nil,
        requestHash: String? = nil,
        parentRunID: String? = nil,
        parentStepID: String? = nil,
        itemIndex: Int? = nil,
        bodyPath: String? = nil,
        compensated: Bool? = nil,
        pendingSignals: [PendingSignal] = [],
        deadLetter: Bool = false,
        rootRunID: String? = nil,
        keyGenerations: [String: Int] = [:],
        createdBy: String? = nil,
        priority: Int = 0,
        createdAt: Date,
        startedAt: Date? = nil,
        completedAt: Date? = nil,
        updatedAt: Date
    ) {
        self.rootRunID = rootRunID
        self.keyGenerations = keyGenerations
        self.id = id
        self.tenantID = tenantID
        self.definitionID = definitionID
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.status = status
        self.input = input
        self.output = output
        self.error = error
        self.idempotencyKey = idempotencyKey
        self.requestHash = requestHash
        self.parentRunID = parentRunID
        self.parentStepID = parentStepID
        self.itemIndex = itemIndex
        self.bodyPath = bodyPath
        self.compensated = compensated
        self.pendingSignals = pendingSignals
        self.deadLetter = deadLetter
        self.createdBy = createdBy
        self.priority = priority
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.updatedAt = updatedAt
    }
}

extension RunRecord {
    /// The top-level run of this run's tree (itself for a top-level run).
    public var treeRootID: String { rootRunID ?? id }

    /// `key_generations` as stored (nil when empty).
    public static func encodeGenerations(_ generations: [String: Int]) -> JSONValue? {
        let kept = generations.filter { $0.value > 0 }
        guard !kept.isEmpty else { return nil }
        return .object(kept.mapValues { .number(Double($0)) })
    }

    public static func decodeGenerations(_ value: JSONValue?) -> [String: Int] {
        guard case .object(let fields)? = value else { return [:] }
        return fields.compactMapValues { $0.integer(in: 0...Int(Int32.max)) }
    }
}

/// A signal delivered to a run before any step waited for it; the first step to wait for its name consumes it.
public struct PendingSignal: Sendable, Hashable {
    public var name: String
    public var payload: JSONValue
    public var receivedAt: Date

    public init(name: String, payload: JSONValue, receivedAt: Date) {
        self.name = name
        self.payload = payload
        self.receivedAt = receivedAt
    }

    /// The signals as stored in the run row (`nil` when there are none).
    public static func encode(_ signals: [PendingSignal]) -> JSONValue? {
        guard !signals.isEmpty else { return nil }
        return .array(
            signals.map {
                [
                    "name": .string($0.name), "payload": $0.payload,
                    "received_at_ms": .number((($0.receivedAt.timeIntervalSince1970) * 1000).rounded()),
                ]
            }
        )
    }

    public static func decode(_ value: JSONValue?) -> [PendingSignal] {
        guard case .array(let items)? = value else { return [] }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            return PendingSignal(
                name: name,
                payload: item["payload"] ?? .null,
                receivedAt: Date(timeIntervalSince1970: (item["received_at_ms"]?.numberValue ?? 0) / 1000)
            )
        }
    }
}

/// The state of one step of one run. Steps not yet reached have no record.
public struct StepRunRecord: Sendable, Hashable {
    public var runID: String
    public var stepID: String
    public var status: StepStatus
    /// Attempts started so far (0 while QUEUED for the first time).
    public var attempt: Int
    /// The step's config rendered against the run when the step became ready.
    public var input: JSONValue?
    public var output: JSONValue?
    public var error: JSONValue?
    /// What the unfinished step keeps between transitions (a signal or child it waits for, foreach progress, an
    /// executor's state across a suspension).
    public var state: StepState?
    public var startedAt: Date?
    public var completedAt: Date?
    public var updatedAt: Date

    public init(
        runID: String,
        stepID: String,
        status: StepStatus,
        attempt: Int = 0,
        input: JSONValue? = nil,
        output: JSONValue? = nil,
        error: JSONValue? = nil,
        state: StepState? = nil,
        startedAt: Date? = nil,
        completedAt: Date? = nil,
        updatedAt: Date
    ) {
        self.runID = runID
        self.stepID = stepID
        self.status = status
        self.attempt = attempt
        self.input = input
        self.output = output
        self.error = error
        self.state = state
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.updatedAt = updatedAt
    }
}

/// One entry of a run's append-only history.
public struct RunEventRecord: Sendable, Hashable {
    public var runID: String
    public var seq: Int
    public var type: String
    public var stepID: String?
    public var data: JSONValue
    public var at: Date

    public init(runID: String, seq: Int, type: String, stepID: String?, data: JSONValue, at: Date) {
        self.runID = runID
        self.seq = seq
        self.type = type
        self.stepID = stepID
        self.data = data
        self.at = at
    }
}

/// What a queued task asks the engine to do.
public enum TaskKind: String, Sendable, Codable, CaseIterable {
    /// Execute (or resume) one step.
    case step
    /// Fail the run if it has not finished by the task's `availableAt` (the workflow's `timeout_ms`).
    case runTimeout = "run_timeout"
    /// Start this run: a `foreach` item created parked, made available when its parent releases it.
    case startRun = "start_run"
    /// This run (a child) has finished: tell the step of the parent run that waits for it.
    case notifyParent = "notify_parent"
    /// Cancel the unfinished child runs of this run (of one step when `stepID` is set).
    case cancelChildren = "cancel_children"

    /// Control tasks survive the end of their run: they carry its consequences to other runs.
    public var isControl: Bool { self == .notifyParent || self == .cancelChildren }

    /// What `TaskDeletion.all` removes: every kind but the control tasks. Drivers bind these values rather than
    /// spell the rule in SQL.
    public static let removedWithRun: [String] = allCases.filter { !$0.isControl }.map(\.rawValue)
}

/// A row of the durable task queue.
public struct TaskRecord: Sendable, Hashable {
    public var id: Int64
    public var tenantID: String
    public var runID: String
    public var stepID: String?
    public var kind: TaskKind
    public var availableAt: Date
    public var priority: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    /// Incremented by every claim: a completion must present the token of its claim (fencing).
    public var leaseToken: Int64

    public init(
        id: Int64,
        tenantID: String,
        runID: String,
        stepID: String?,
        kind: TaskKind,
        availableAt: Date,
        priority: Int,
        leaseOwner: String?,
        leaseExpiresAt: Date?,
        leaseToken: Int64
    ) {
        self.id = id
        self.tenantID = tenantID
        self.runID = runID
        self.stepID = stepID
        self.kind = kind
        self.availableAt = availableAt
        self.priority = priority
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.leaseToken = leaseToken
    }

    /// The proof of ownership a worker presents when it completes this task.
    public var fence: TaskFence { TaskFence(taskID: id, leaseToken: leaseToken) }
}

/// Identifies one claim of one task; a transition carrying a fence applies only while that claim is current.
public struct TaskFence: Sendable, Hashable {
    public var taskID: Int64
    public var leaseToken: Int64

    public init(taskID: Int64, leaseToken: Int64) {
        self.taskID = taskID
        self.leaseToken = leaseToken
    }
}
