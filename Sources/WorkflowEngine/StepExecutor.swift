import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Executes one kind of step. Conformers: the built-in executors of this module; later, plug-ins.
///
/// An executor is called at least once per step attempt and must tolerate being called again for the same
/// attempt after a crash (use ``StepExecution/idempotencyKey`` toward remote systems). It must honour task
/// cancellation promptly: cancellation means the run was cancelled or this node lost the step's lease.
public protocol StepExecutor: Sendable {
    func execute(_ execution: StepExecution) async -> StepResult
}

/// What an executor is given.
public struct StepExecution: Sendable {
    public var runID: String
    public var stepID: String
    public var type: StepType
    /// The step's config, rendered against the run when the step became ready.
    public var input: JSONValue
    /// 1 for the first attempt.
    public var attempt: Int
    /// State the executor returned with its last ``StepResult/suspend(until:state:)``, or nil.
    public var state: JSONValue?
    /// The time the engine's clock gave when this execution began.
    public var now: Date

    /// Stable for every attempt of this step of this run: remote systems can deduplicate retries with it.
    public var idempotencyKey: String { "\(runID)/\(stepID)" }
}

/// How an attempt ended.
public enum StepResult: Sendable {
    case success(JSONValue)
    case failure(StepFailure)
    /// Not finished: wake this step again at `until` with `state` (a durable timer).
    case suspend(until: Date, state: JSONValue)
    /// Start this child run (a `sub_workflow`) and wait for it; the step ends with the child.
    case startChild(ChildRun)
}

/// A child run to create with the transition that records it.
public struct ChildRun: Sendable {
    public var run: RunRecord
    public var plan: WorkflowPlan

    public init(run: RunRecord, plan: WorkflowPlan) {
        self.run = run
        self.plan = plan
    }
}

/// A failed attempt.
public struct StepFailure: Sendable, Hashable {
    /// A stable code (`http_error`, `timeout`, `connection_error`, `step_failed`, `template_error`, …).
    public var code: String
    public var message: String
    /// Whether the retry policy may try again.
    public var retriable: Bool
    public var details: JSONValue?

    public init(code: String, message: String, retriable: Bool, details: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.retriable = retriable
        self.details = details
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["code": .string(code), "message": .string(message), "retriable": .bool(retriable)]
        if let details { fields["details"] = details }
        return .object(fields)
    }
}
