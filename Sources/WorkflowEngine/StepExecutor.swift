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
    /// How many times a retry in place gave this step a new intended effect (see ``idempotencyKey``).
    public var keyGeneration: Int
    public var tenantID: String
    /// The tenant's policies (its egress rules) as this node last read them.
    public var tenantSettings: TenantSettings

    public init(
        runID: String,
        stepID: String,
        type: StepType,
        input: JSONValue,
        attempt: Int,
        state: JSONValue?,
        now: Date,
        keyGeneration: Int = 0,
        tenantID: String = defaultTenantID,
        tenantSettings: TenantSettings = TenantSettings()
    ) {
        self.tenantID = tenantID
        self.tenantSettings = tenantSettings
        self.runID = runID
        self.stepID = stepID
        self.type = type
        self.input = input
        self.attempt = attempt
        self.state = state
        self.now = now
        self.keyGeneration = keyGeneration
    }

    /// Names one intended effect: the same for every attempt of this step of this run (`<run id>/<step id>`), so
    /// remote systems can deduplicate retries and re-executions after a crash; `/<generation>` is appended once a
    /// retry in place follows an effect that was undone by compensation or definitively refused.
    public var idempotencyKey: String {
        keyGeneration == 0 ? "\(runID)/\(stepID)" : "\(runID)/\(stepID)/\(keyGeneration)"
    }
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

extension StepResult {
    /// This result with every occurrence of `secrets` in what it returns replaced by `***` (a remote system that
    /// echoes a token back must not get it stored).
    func masking(_ secrets: [String]) -> StepResult {
        guard !secrets.isEmpty else { return self }
        switch self {
        case .success(let output): return .success(output.masking(secrets))
        case .failure(var failure):
            failure.message = JSONValue.string(failure.message).masking(secrets).stringValue ?? Template.secretMask
            failure.details = failure.details?.masking(secrets)
            return .failure(failure)
        case .suspend(let until, let state): return .suspend(until: until, state: state.masking(secrets))
        case .startChild: return self
        }
    }
}
