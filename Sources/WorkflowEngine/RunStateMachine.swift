import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The pure transitions of one run: what to write when a run starts, a task is claimed, a step attempt ends, a signal
/// or a child's result arrives, the run is cancelled or retried. No I/O and no clock: the caller passes `now` and
/// randomness, the driver writes the result.
///
/// A failing run goes through two more phases before it ends FAILED: the compensations of the steps that had
/// succeeded (status COMPENSATING, one at a time, latest completion first), then the workflow's `on_failure` step.
/// While it does, `run.error` already holds the failure.
public struct RunStateMachine: RunTransitionWrites {
    /// Where newly ready steps go: to the queue for any node, or claimed at once by the node that unblocked them.
    public struct Dispatch: Sendable {
        public var owner: String
        public var leaseExpiresAt: Date
        /// Most steps one transition leases to `owner`; the rest go to the shared queue, where other runs' work is
        /// interleaved with them. Without it, a run that readies 2,000 steps at once kept the node to itself.
        public var capacity: Int

        public init(owner: String, leaseExpiresAt: Date, capacity: Int = .max) {
            self.owner = owner
            self.leaseExpiresAt = leaseExpiresAt
            self.capacity = capacity
        }
    }

    /// Most items one `foreach` takes (they are all created in one transaction).
    public static let maxForeachItems = 100_000

    /// Most signals a run keeps before a step consumes them.
    public static let maxPendingSignals = 100

    let plan: WorkflowPlan
    let now: Date
    let dispatch: Dispatch?
    /// A uniform draw from [0, 1) for retry jitter, passed in by whoever may schedule a retry (`complete`,
    /// `childFinished`); the other transitions schedule none.
    let random: Double
    var run: RunRecord
    var steps: [String: StepRunRecord]
    var runChanged = false
    var changedStepIDs: [String] = []
    var deletedStepIDs: [String] = []
    var events: [NewEvent] = []
    var newTasks: [NewTask] = []
    var deleteTasks: TaskDeletion = .none
    var spawn: [RunInsertParams] = []
    var releaseRuns: [String] = []
    /// Steps this transition leased to the dispatching node.
    var dispatched = 0

    /// Runs this transition may still add to the run's tree (`foreach` items, nested ones included).
    var treeBudget: Int

    private init(
        plan: WorkflowPlan,
        run: RunRecord,
        steps: [String: StepRunRecord],
        now: Date,
        dispatch: Dispatch?,
        random: Double = 0,
        treeRuns: Int? = nil,
        treeBudget: Int? = nil
    ) {
        self.plan = plan
        self.run = run
        self.steps = steps
        self.now = now
        self.dispatch = dispatch
        self.random = random
        // Uncounted, the tree is taken as this run alone: one transition still adds at most the whole bound.
        self.treeBudget = treeBudget ?? (plan.limits.maxRunsPerTree - (treeRuns ?? 1))
    }

    private init(plan: WorkflowPlan, snapshot: RunSnapshot, now: Date, dispatch: Dispatch?, random: Double = 0) {
        self.init(
            plan: plan,
            run: snapshot.run,
            steps: snapshot.steps,
            now: now,
            dispatch: dispatch,
            random: random,
            treeRuns: snapshot.treeRuns
        )
    }

    // MARK: entry points

    /// The first transition of a new run: history, the workflow timeout and the root steps.
    /// With `dispatch`, the root steps are claimed at once by that node (it runs them without polling).
    /// A `parked` run (a `foreach` item beyond `max_concurrency`) gets its tasks only when its parent releases it.
    public static func start(
        run: RunRecord,
        plan: WorkflowPlan,
        now: Date,
        dispatch: Dispatch? = nil,
        parked: Bool = false,
        treeBudget: Int? = nil
    ) -> RunMutation {
        var machine = RunStateMachine(plan: plan, run: run, steps: [:], now: now, dispatch: parked ? nil : dispatch, treeBudget: treeBudget)
        var data: [String: JSONValue] = [
            "workflow": .string(run.workflowName), "version": .string(run.workflowVersion),
            "definition_id": .string(run.definitionID),
        ]
        if let parent = run.parentRunID { data["parent_run_id"] = .string(parent) }
        if let step = run.parentStepID { data["parent_step_id"] = .string(step) }
        if let item = run.itemIndex { data["item_index"] = .number(Double(item)) }
        if let actor = run.createdBy { data["actor"] = .string(actor) }
        machine.events.append(NewEvent("run_created", data: .object(data)))
        if parked {
            // Nothing is evaluated yet: the item starts when its parent releases it (its task becomes available).
            machine.newTasks.append(NewTask(stepID: nil, kind: .startRun, availableAt: .distantFuture, priority: run.priority))
        } else {
            machine.begin()
        }
        var mutation = machine.mutation()
        mutation.run = machine.run  // the run row is inserted as it stands after the first transition
        return mutation
    }

    /// Starts a run created parked (a released `foreach` item); a run that is no longer PENDING is left alone.
    public static func begin(snapshot: RunSnapshot, plan: WorkflowPlan, now: Date, dispatch: Dispatch?) -> RunMutation {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch)
        if machine.run.status == .pending, machine.steps.isEmpty { machine.begin() }
        return machine.mutation()
    }

    mutating func begin() {
        scheduleRunTimeout()
        for step in plan.steps where step.dependencies.isEmpty {
            activate(step)
            if run.status.isTerminal || isFailing { break }
        }
        completeIfDone()
    }

    /// The task that fails the run if it has not finished within the workflow's `timeout_ms` (counted from now).
    mutating func scheduleRunTimeout() {
        guard let timeout = plan.timeoutMs else { return }
        newTasks.append(
            NewTask(stepID: nil, kind: .runTimeout, availableAt: now.addingTimeInterval(Double(timeout) / 1000), priority: run.priority)
        )
    }

    /// The writes that go with claiming `task` (as it was before the claim) for `owner`.
    /// It needs no plan, so the driver can call it inside its claim transaction.
    public static func claim(snapshot: RunSnapshot, task: TaskRecord, owner: String, now: Date) -> RunMutation {
        var transition = PlanlessTransition(snapshot: snapshot, now: now)
        transition.claim(task, owner: owner)
        return transition.mutation()
    }

    /// The writes that record how an attempt of `stepID` ended, and everything that follows from it.
    public static func complete(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        stepID: String,
        result: StepResult,
        now: Date,
        dispatch: Dispatch?,
        random: Double
    ) -> RunMutation {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch, random: random)
        machine.complete(stepID: stepID, result: result)
        return machine.mutation()
    }

    /// Cancels the run: queued, executing and waiting steps become CANCELLED and its step tasks are removed.
    /// Children it waits for are cancelled by a control task; its parent hears of it unless `notifyParent` is false
    /// (the parent is the one cancelling).
    /// - Throws: `run_not_cancellable` when the run has already finished.
    public static func cancel(
        snapshot: RunSnapshot,
        reason: String,
        now: Date,
        notifyParent: Bool = true,
        actor: String? = nil
    ) throws(WorkflowError)
        -> RunMutation
    {
        guard !snapshot.run.status.isTerminal else {
            throw WorkflowError(.runNotCancellable, "run \(snapshot.run.id) has already finished (\(snapshot.run.status.rawValue))")
        }
        var transition = PlanlessTransition(snapshot: snapshot, now: now)
        transition.finish(
            .cancelled,
            error: ["code": "cancelled", "message": .string(reason)],
            event: "run_cancelled",
            notifyParent: notifyParent,
            actor: actor
        )
        return transition.mutation()
    }

    /// Delivers signal `name`: the step waiting for it completes with `payload`; if none waits yet, the run keeps it.
    /// - Throws: `run_finished` when the run has finished, `too_many_signals` when too many are kept already.
    public static func signal(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        name: String,
        payload: JSONValue,
        now: Date,
        dispatch: Dispatch?,
        actor: String? = nil
    ) throws(WorkflowError) -> RunMutation {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch)
        try machine.signal(name: name, payload: payload, actor: actor)
        return machine.mutation()
    }

    /// Applies an approval decision to a run.
    public static func decideApproval(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        stepID: String,
        decision: ApprovalDecision,
        now: Date,
        dispatch: Dispatch?
    ) throws(WorkflowError) -> RunMutation {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch)
        try machine.decideApproval(stepID: stepID, decision)
        return machine.mutation()
    }

    /// A child run of this run has finished: the `sub_workflow` step waiting for it ends, or the `foreach` counts it.
    public static func childFinished(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        child: RunRecord,
        now: Date,
        dispatch: Dispatch?,
        random: Double
    )
        -> RunMutation
    {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch, random: random)
        machine.childFinished(child)
        return machine.mutation()
    }

    /// The run's `timeout_ms` ran out (`deadline` is when): it fails, and compensates like any failure. A run that
    /// is already failing finishes its compensations.
    public static func timeout(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        deadline: Date,
        now: Date,
        dispatch: Dispatch?
    )
        -> RunMutation
    {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch)
        if !machine.run.status.isTerminal, !machine.isFailing {
            let limit = Int((deadline.timeIntervalSince(machine.run.createdAt) * 1000).rounded())
            machine.events.append(NewEvent("run_timed_out", data: ["timeout_ms": .number(Double(limit))]))
            machine.failRun(step: nil, code: "run_timeout", message: "the run did not finish within its timeout of \(limit) ms")
        }
        return machine.mutation()
    }

    /// Resumes a FAILED or CANCELLED run in place: successful steps keep their outputs, failed, cancelled and
    /// compensated steps run again, and so does everything after them.
    /// - Throws: `run_not_retryable` when the run is not FAILED or CANCELLED, or is a `foreach` item.
    public static func resume(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        now: Date,
        dispatch: Dispatch?,
        actor: String? = nil
    ) throws(WorkflowError)
        -> RunMutation
    {
        var machine = RunStateMachine(plan: plan, snapshot: snapshot, now: now, dispatch: dispatch)
        try machine.resume(actor: actor)
        return machine.mutation()
    }
}
