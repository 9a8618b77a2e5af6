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
public struct RunStateMachine {
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

    /// Nil for claims and cancellations: the driver calls them inside its transaction, where no plan can be loaded.
    private let plan: WorkflowPlan!
    private let now: Date
    private let dispatch: Dispatch?
    private var run: RunRecord
    private var steps: [String: StepRunRecord]
    private var runChanged = false
    private var changedStepIDs: [String] = []
    private var deletedStepIDs: [String] = []
    private var events: [NewEvent] = []
    private var newTasks: [NewTask] = []
    private var deleteTasks: TaskDeletion = .none
    private var spawn: [RunInsertParams] = []
    private var releaseRuns: [String] = []
    /// Steps this transition leased to the dispatching node.
    private var dispatched = 0

    /// Runs this transition may still add to the run's tree (`foreach` items, nested ones included).
    private var treeBudget: Int

    private init(
        plan: WorkflowPlan?,
        run: RunRecord,
        steps: [String: StepRunRecord],
        now: Date,
        dispatch: Dispatch?,
        treeRuns: Int? = nil,
        treeBudget: Int? = nil
    ) {
        self.plan = plan
        self.run = run
        self.steps = steps
        self.now = now
        self.dispatch = dispatch
        // Uncounted, the tree is taken as this run alone: one transition still adds at most the whole bound.
        self.treeBudget = treeBudget ?? ((plan?.limits.maxRunsPerTree ?? .max) - (treeRuns ?? 1))
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
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
        if machine.run.status == .pending, machine.steps.isEmpty { machine.begin() }
        return machine.mutation()
    }

    private mutating func begin() {
        if let timeout = plan.timeoutMs {
            newTasks.append(
                NewTask(
                    stepID: nil,
                    kind: .runTimeout,
                    availableAt: now.addingTimeInterval(Double(timeout) / 1000),
                    priority: run.priority
                )
            )
        }
        for step in plan.steps where step.dependencies.isEmpty {
            activate(step)
            if run.status.isTerminal || isFailing { break }
        }
        completeIfDone()
    }

    /// The writes that go with claiming `task` (as it was before the claim) for `owner`.
    /// It needs no plan, so the driver can call it inside its claim transaction.
    public static func claim(snapshot: RunSnapshot, task: TaskRecord, owner: String, now: Date) -> RunMutation {
        var machine = RunStateMachine(plan: nil, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: nil)
        machine.claim(task, owner: owner)
        return machine.mutation()
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
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
        machine.complete(stepID: stepID, result: result, random: random)
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
        notifyParent: Bool = true
    ) throws(WorkflowError)
        -> RunMutation
    {
        guard !snapshot.run.status.isTerminal else {
            throw WorkflowError(.runNotCancellable, "run \(snapshot.run.id) has already finished (\(snapshot.run.status.rawValue))")
        }
        var machine = RunStateMachine(plan: nil, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: nil)
        machine.finish(.cancelled, error: ["code": "cancelled", "message": .string(reason)], event: "run_cancelled", notifyParent: notifyParent)
        return machine.mutation()
    }

    /// Delivers signal `name`: the step waiting for it completes with `payload`; if none waits yet, the run keeps it.
    /// - Throws: `run_finished` when the run has finished, `too_many_signals` when too many are kept already.
    public static func signal(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        name: String,
        payload: JSONValue,
        now: Date,
        dispatch: Dispatch?
    ) throws(WorkflowError) -> RunMutation {
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
        try machine.signal(name: name, payload: payload)
        return machine.mutation()
    }

    /// A child run of this run has finished: the `sub_workflow` step waiting for it ends, or the `foreach` counts it.
    public static func childFinished(
        snapshot: RunSnapshot,
        plan: WorkflowPlan,
        child: RunRecord,
        now: Date,
        dispatch: Dispatch?
    )
        -> RunMutation
    {
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
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
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
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
        dispatch: Dispatch?
    ) throws(WorkflowError)
        -> RunMutation
    {
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch, treeRuns: snapshot.treeRuns)
        try machine.resume()
        return machine.mutation()
    }

    // MARK: transitions

    private mutating func claim(_ task: TaskRecord, owner: String) {
        switch task.kind {
        case .runTimeout, .notifyParent, .cancelChildren, .startRun:
            break  // leased only: the engine carries them out (a timeout needs the plan, for compensation)
        case .step:
            guard !run.status.isTerminal, let stepID = task.stepID, var step = steps[stepID], !step.status.isTerminal else {
                deleteTasks = .all  // stale work for a finished run or step
                if !run.status.isTerminal, let stepID = task.stepID { deleteTasks = .steps([stepID]) }
                return
            }
            startRunIfPending()
            var data: [String: JSONValue] = ["node": .string(owner)]
            if let previous = task.leaseOwner {
                // The task was leased before and the lease ran out: its node died or stalled. This is the takeover.
                data["taken_over_from"] = .string(previous)
            }
            if step.status == .executing || step.status == .waiting, step.state != nil, task.leaseOwner == nil {
                // A suspended or waiting step woken by its timer: the same attempt goes on.
                step.status = .executing
                data["attempt"] = .number(Double(step.attempt))
                events.append(NewEvent("step_resumed", stepID: stepID, data: .object(data)))
            } else {
                step.attempt += 1
                step.status = .executing
                step.startedAt = step.startedAt ?? now
                data["attempt"] = .number(Double(step.attempt))
                events.append(NewEvent("step_started", stepID: stepID, data: .object(data)))
            }
            step.updatedAt = now
            put(step)
        }
    }

    private mutating func complete(stepID: String, result: StepResult, random: Double) {
        guard !run.status.isTerminal, var step = steps[stepID], step.status == .executing, let planned = plan.step(for: stepID)
        else { return }
        var result = result
        if planned.type == .waitForSignal, let name = step.state?["signal"]?.stringValue, let payload = takeSignal(name, stepID: stepID) {
            result = .success(payload)  // the signal arrived while the timeout was being handled: the signal wins
        }
        step.updatedAt = now
        if case .success(let output) = result, let problem = outputProblem(output, what: "the step's output") {
            result = .failure(problem)
        }
        switch result {
        case .success(let output):
            succeed(step, planned, output: output)
        case .failure(let failure):
            step.error = failure.json
            step.state = nil
            if failure.retriable, step.attempt < planned.retry.maxAttempts {
                let delay = planned.retry.delayMs(afterAttempt: step.attempt, random: random)
                step.status = .queued
                put(step)
                newTasks.append(
                    NewTask(
                        stepID: stepID,
                        kind: .step,
                        availableAt: now.addingTimeInterval(Double(delay) / 1000),
                        priority: run.priority
                    )
                )
                events.append(
                    NewEvent(
                        "step_retrying",
                        stepID: stepID,
                        data: [
                            "attempt": .number(Double(step.attempt)), "delay_ms": .number(Double(delay)), "error": failure.json,
                        ]
                    )
                )
            } else {
                fail(step, planned, failure)
            }
        case .suspend(let until, let state):
            step.state = state
            put(step)
            newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: until, priority: run.priority))
            events.append(
                NewEvent(
                    "step_suspended",
                    stepID: stepID,
                    data: [
                        "until_ms": .number((until.timeIntervalSince1970 * 1000).rounded())
                    ]
                )
            )
        case .startChild where treeBudget < 1:
            // Counted again as the start is recorded (the worker's count can be passed by concurrent starts).
            fail(
                step,
                planned,
                StepFailure(
                    code: "run_tree_too_large",
                    message: "a run tree may hold at most \(plan.limits.maxRunsPerTree) runs (--max-runs-per-tree)",
                    retriable: false
                )
            )
        case .startChild(let child):
            step.status = .waiting
            step.state = ["child_run_id": .string(child.run.id), "awaits_children": true]
            put(step)
            // The child joins this run's tree: a foreach at its root counts against what the tree has left.
            var initial = RunStateMachine.start(run: child.run, plan: child.plan, now: now, dispatch: nil, treeBudget: treeBudget - 1)
            treeBudget -= 1 + initial.spawnedRuns
            let inserted = initial.run ?? child.run
            initial.run = nil
            spawn.append(RunInsertParams(run: inserted, initial: initial))
            events.append(
                NewEvent(
                    "child_run_started",
                    stepID: stepID,
                    data: [
                        "child_run_id": .string(child.run.id), "workflow": .string(child.run.workflowName),
                        "version": .string(child.run.workflowVersion),
                    ]
                )
            )
        }
    }

    private mutating func succeed(_ step: StepRunRecord, _ planned: WorkflowPlan.Step, output: JSONValue) {
        var step = step
        step.status = .success
        step.output = output
        step.error = nil
        step.state = nil
        step.completedAt = now
        step.updatedAt = now
        put(step)
        events.append(NewEvent("step_succeeded", stepID: step.stepID, data: ["attempt": .number(Double(step.attempt))]))
        if planned.index < 0 { continueFailure() } else { stepSettled(planned) }
    }

    /// A step failed for good: the run fails, unless the step may fail (`continue_on_error`) or is itself part of
    /// failure handling (then the next compensation runs).
    private mutating func fail(_ step: StepRunRecord, _ planned: WorkflowPlan.Step, _ failure: StepFailure) {
        var step = step
        step.status = .failed
        step.error = failure.json
        step.state = nil
        step.completedAt = now
        step.updatedAt = now
        put(step)
        events.append(
            NewEvent(
                "step_failed",
                stepID: step.stepID,
                data: [
                    "attempt": .number(Double(step.attempt)), "error": failure.json,
                ]
            )
        )
        if planned.index < 0 {
            continueFailure()
        } else if planned.continueOnError {
            stepSettled(planned)
        } else {
            failRun(step: step.stepID, code: "step_failed", message: "step '\(step.stepID)' failed: \(failure.message)")
        }
    }

    /// A step became ready: evaluate its condition, render its config and queue it (or skip or fail it).
    private mutating func activate(_ planned: WorkflowPlan.Step) {
        let scope = scope(reading: planned.reads)
        if let when = planned.when {
            do {
                if !(try when.evaluate(in: scope).isTruthy) {
                    skip(planned, reason: "condition is false")
                    return
                }
            } catch {
                failUnstarted(planned, code: "expression_error", message: "when: \(error.message)")
                return
            }
        }
        let input: JSONValue
        do {
            input = try planned.config.render(in: scope)
        } catch {
            failUnstarted(planned, code: "template_error", message: "config: \(error.message)")
            return
        }
        if let problem = configProblem(planned, input) {
            failUnstarted(planned, code: problem.code, message: problem.message)
            return
        }
        switch planned.type {
        case .switch: return activateSwitch(planned, scope: scope)
        case .waitForSignal: return activateWait(planned, input: input)
        case .foreach: return activateForeach(planned, input: input)
        default: break
        }
        queue(planned.id, input: input)
    }

    /// Creates the step's record and its task (claimed at once by the dispatching node when there is one).
    private mutating func queue(_ stepID: String, input: JSONValue) {
        var step = StepRunRecord(runID: run.id, stepID: stepID, status: .queued, input: input, updatedAt: now)
        events.append(NewEvent("step_queued", stepID: stepID))
        if let dispatch, dispatched < dispatch.capacity {
            dispatched += 1
            startRunIfPending()
            step.status = .executing
            step.attempt = 1
            step.startedAt = now
            newTasks.append(
                NewTask(
                    stepID: stepID,
                    kind: .step,
                    availableAt: now,
                    priority: run.priority,
                    leaseOwner: dispatch.owner,
                    leaseExpiresAt: dispatch.leaseExpiresAt
                )
            )
            events.append(NewEvent("step_started", stepID: stepID, data: ["attempt": 1, "node": .string(dispatch.owner)]))
        } else {
            newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: now, priority: run.priority))
        }
        put(step)
    }

    /// A `switch` decides in the transition that readies it: the first case that holds is taken.
    private mutating func activateSwitch(_ planned: WorkflowPlan.Step, scope: ExpressionScope) {
        var taken: Int?
        for (i, branch) in planned.switchCases.enumerated() {
            do {
                if try branch.when.evaluate(in: scope).isTruthy {
                    taken = i
                    break
                }
            } catch {
                failUnstarted(planned, code: "expression_error", message: "cases[\(i)].when: \(error.message)")
                return
            }
        }
        startRunIfPending()
        let branch: JSONValue = taken.map { .number(Double($0)) } ?? "default"
        put(
            StepRunRecord(
                runID: run.id,
                stepID: planned.id,
                status: .success,
                attempt: 1,
                output: ["branch": branch],
                startedAt: now,
                completedAt: now,
                updatedAt: now
            )
        )
        events.append(NewEvent("step_succeeded", stepID: planned.id, data: ["attempt": 1, "branch": branch]))
        stepSettled(planned)
    }

    /// A `wait_for_signal` completes at once with a signal that arrived early, else waits (with a timeout task).
    private mutating func activateWait(_ planned: WorkflowPlan.Step, input: JSONValue) {
        guard let name = input["signal"]?.stringValue, SignalName.isValid(name) else {
            failUnstarted(planned, code: "template_error", message: "config.signal must render to a signal name")
            return
        }
        startRunIfPending()
        var step = StepRunRecord(
            runID: run.id,
            stepID: planned.id,
            status: .waiting,
            attempt: 1,
            input: input,
            state: ["signal": .string(name)],
            startedAt: now,
            updatedAt: now
        )
        if let payload = takeSignal(name, stepID: planned.id) {
            step.status = .executing
            steps[planned.id] = step
            succeed(step, planned, output: payload)
            return
        }
        put(step)
        var data: [String: JSONValue] = ["signal": .string(name)]
        if let timeout = input["timeout_ms"]?.numberValue, timeout >= 1 {
            let deadline = now.addingTimeInterval(timeout / 1000)
            newTasks.append(NewTask(stepID: planned.id, kind: .step, availableAt: deadline, priority: run.priority))
            data["deadline_ms"] = .number((deadline.timeIntervalSince1970 * 1000).rounded())
        }
        events.append(NewEvent("step_waiting", stepID: planned.id, data: .object(data)))
    }

    /// A `foreach` creates one child run per item at once (their inputs hold the items, so the parent never rereads
    /// them) and releases `max_concurrency` of them; each finished item releases the next.
    private mutating func activateForeach(_ planned: WorkflowPlan.Step, input: JSONValue) {
        guard let items = input["items"]?.arrayValue else {
            failUnstarted(
                planned,
                code: "template_error",
                message: "config.items must render to an array, got \(input["items"]?.typeName ?? "nothing")"
            )
            return
        }
        guard var body = planned.body?.plan else {
            failUnstarted(planned, code: "internal_error", message: "the foreach has no compiled body")
            return
        }
        body.limits = plan.limits
        let maxItems = min(Self.maxForeachItems, plan.limits.maxRunsPerTree)
        guard items.count <= maxItems else {
            failUnstarted(planned, code: "too_many_items", message: "a foreach takes at most \(maxItems) items, got \(items.count)")
            return
        }
        // Nested fan-out multiplies: the items count against the whole tree's bound, not only this foreach's.
        guard items.count <= treeBudget else {
            failUnstarted(
                planned,
                code: "run_tree_too_large",
                message: "\(items.count) items would take the run tree past \(plan.limits.maxRunsPerTree) runs (--max-runs-per-tree)"
            )
            return
        }
        treeBudget -= items.count
        let limit = input["max_concurrency"]?.integer(in: 1...10_000) ?? 10
        let continueOnError = input["continue_on_error"]?.boolValue ?? false
        startRunIfPending()
        var stored = input.objectValue ?? [:]
        stored["items"] = nil
        stored["item_count"] = .number(Double(items.count))
        var step = StepRunRecord(
            runID: run.id,
            stepID: planned.id,
            status: .waiting,
            attempt: 1,
            input: .object(stored),
            startedAt: now,
            updatedAt: now
        )
        if items.isEmpty {
            step.status = .executing
            steps[planned.id] = step
            succeed(step, planned, output: ["results": []])
            return
        }
        let base = RecordID.make(now: now)
        let released = min(limit, items.count)
        // Nested steps that read `input` see the parent's input, copied into each item without the items themselves.
        var shared: JSONValue?
        if body.readsInput {
            // The items are not copied again into each item: only the field they were taken from is left out (another
            // field that happens to hold the same values stays, a nested foreach may iterate it).
            var fields = scopeInput.objectValue ?? [:]
            if case .object(let config) = planned.config, case .single(.member(.identifier("input"), let key)) = config["items"] {
                fields[key] = nil
            }
            shared = .object(fields)
        }
        let bodyPath = (run.bodyPath.map { $0 + "/" } ?? "") + planned.id
        for (index, item) in items.enumerated() {
            let child = RunRecord(
                id: RecordID.item(base: base, index: index),
                tenantID: run.tenantID,
                definitionID: run.definitionID,
                workflowName: run.workflowName,
                workflowVersion: run.workflowVersion,
                status: .pending,
                input: shared.map { ["item": item, "index": .number(Double(index)), "input": $0] } ?? [
                    "item": item, "index": .number(Double(index)),
                ],
                parentRunID: run.id,
                parentStepID: planned.id,
                itemIndex: index,
                bodyPath: bodyPath,
                rootRunID: run.treeRootID,
                priority: run.priority,
                createdAt: now,
                updatedAt: now
            )
            var initial = RunStateMachine.start(
                run: child,
                plan: body,
                now: now,
                dispatch: nil,
                parked: index >= released,
                treeBudget: treeBudget
            )
            treeBudget -= initial.spawnedRuns
            let inserted = initial.run ?? child
            initial.run = nil
            spawn.append(RunInsertParams(run: inserted, initial: initial))
        }
        step.state = [
            "base": .string(base), "total": .number(Double(items.count)), "next": .number(Double(released)),
            "active": .number(Double(released)), "done": 0, "failed": 0, "continue_on_error": .bool(continueOnError),
            "awaits_children": true,
        ]
        put(step)
        events.append(
            NewEvent(
                "foreach_started",
                stepID: planned.id,
                data: [
                    "items": .number(Double(items.count)), "max_concurrency": .number(Double(limit)),
                ]
            )
        )
    }

    private mutating func childFinished(_ child: RunRecord) {
        guard !run.status.isTerminal, !isFailing, let stepID = child.parentStepID, var step = steps[stepID], step.status == .waiting,
            let planned = plan.step(for: stepID)
        else { return }
        switch planned.type {
        case .subWorkflow:
            guard step.state?["child_run_id"]?.stringValue == child.id else { return }
            step.status = .executing
            steps[stepID] = step
            events.append(
                NewEvent(
                    "child_run_finished",
                    stepID: stepID,
                    data: [
                        "child_run_id": .string(child.id), "status": .string(child.status.rawValue),
                    ]
                )
            )
            if child.status == .completed {
                complete(stepID: stepID, result: .success(child.output ?? .object([:])), random: 0.5)
            } else {
                complete(
                    stepID: stepID,
                    result: .failure(
                        StepFailure(
                            code: "child_run_failed",
                            message: "child run \(child.id) ended \(child.status.rawValue)",
                            retriable: child.status == .failed,
                            details: child.error ?? .null
                        )
                    ),
                    random: 0.5
                )
            }
        case .foreach:
            guard var state = step.state?.objectValue, let base = state["base"]?.stringValue, let index = child.itemIndex,
                RecordID.item(base: base, index: index) == child.id, state["phase"] == nil
            else { return }
            func count(_ key: String) -> Int { Int(state[key]?.numberValue ?? 0) }
            let total = count("total")
            var next = count("next")
            state["done"] = .number(Double(count("done") + 1))
            state["active"] = .number(Double(max(0, count("active") - 1)))
            if child.status != .completed {
                state["failed"] = .number(Double(count("failed") + 1))
                events.append(
                    NewEvent(
                        "foreach_item_failed",
                        stepID: stepID,
                        data: [
                            "index": .number(Double(index)), "child_run_id": .string(child.id), "error": child.error ?? .null,
                        ]
                    )
                )
                if state["continue_on_error"]?.boolValue != true {
                    step.state = .object(state)
                    step.status = .executing
                    steps[stepID] = step
                    if next < total || count("active") > 0 {
                        newTasks.append(NewTask(stepID: stepID, kind: .cancelChildren, availableAt: now, priority: run.priority))
                    }
                    complete(
                        stepID: stepID,
                        result: .failure(
                            StepFailure(
                                code: "item_failed",
                                message: "item \(index) failed",
                                retriable: false,
                                details: ["index": .number(Double(index)), "child_run_id": .string(child.id), "error": child.error ?? .null]
                            )
                        ),
                        random: 0.5
                    )
                    return
                }
            }
            if next < total {
                releaseRuns.append(RecordID.item(base: base, index: next))
                next += 1
                state["next"] = .number(Double(next))
                state["active"] = .number(Double(count("active") + 1))
            }
            if count("done") == total {
                // Every item has finished: the step runs once more to collect the results in item order.
                state["phase"] = "collect"
                newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: now, priority: run.priority))
            }
            step.state = .object(state)
            step.updatedAt = now
            put(step)
        default:
            return
        }
    }

    private mutating func signal(name: String, payload: JSONValue) throws(WorkflowError) {
        guard !run.status.isTerminal else {
            throw WorkflowError(.runFinished, "run \(run.id) has already finished (\(run.status.rawValue)); it takes no signals")
        }
        events.append(NewEvent("signal_received", data: ["signal": .string(name)]))
        let waiting = steps.values.filter { $0.status == .waiting && $0.state?["signal"]?.stringValue == name }
            .min { ($0.startedAt ?? now, $0.stepID) < ($1.startedAt ?? now, $1.stepID) }
        if var step = waiting, let planned = plan.step(for: step.stepID) {
            step.status = .executing
            steps[step.stepID] = step
            deleteTasks = deleteTasks.adding(steps: [step.stepID])  // its timeout
            events.append(NewEvent("signal_consumed", stepID: step.stepID, data: ["signal": .string(name)]))
            succeed(step, planned, output: payload)
            return
        }
        guard run.pendingSignals.count < Self.maxPendingSignals else {
            throw WorkflowError(.tooManySignals, "run \(run.id) already keeps \(Self.maxPendingSignals) signals no step has waited for")
        }
        run.pendingSignals.append(PendingSignal(name: name, payload: payload, receivedAt: now))
        run.updatedAt = now
        runChanged = true
    }

    /// Removes and returns the payload of the oldest kept signal named `name`.
    private mutating func takeSignal(_ name: String, stepID: String) -> JSONValue? {
        guard let i = run.pendingSignals.firstIndex(where: { $0.name == name }) else { return nil }
        let signal = run.pendingSignals.remove(at: i)
        runChanged = true
        events.append(NewEvent("signal_consumed", stepID: stepID, data: ["signal": .string(name)]))
        return signal.payload
    }

    private mutating func resume() throws(WorkflowError) {
        guard run.status == .failed || run.status == .cancelled else {
            throw WorkflowError(.runNotRetryable, "only FAILED or CANCELLED runs can be retried; run \(run.id) is \(run.status.rawValue)")
        }
        guard run.bodyPath == nil else {
            throw WorkflowError(.runNotRetryable, "run \(run.id) is an item of a foreach; retry its parent \(run.parentRunID ?? "")")
        }
        let compensated = Set(steps.keys.filter { $0.hasSuffix(".compensate") }.map { String($0.dropLast(".compensate".count)) })
        // An Idempotency-Key names one intended effect. A step whose effect is settled — undone by its compensation, or
        // known not to have happened (a definitive refusal) — intends a new effect when it runs again, so it gets a new
        // key; a step whose outcome is unknown (timeout, 5xx, cancelled mid-call) keeps its key, so the remote can
        // answer with what it did. on_failure runs again for a new failure: a new key too.
        var bumped: [String] = []
        for (id, step) in steps where !id.hasSuffix(".compensate") {
            let undone = steps[id + ".compensate"]?.status == .success
            let refused = step.status == .failed && Self.settlesEffect(step.error)
            let handledFailure = id == "on_failure" && (step.status == .success || refused)
            if undone || refused || handledFailure {
                run.keyGenerations[id, default: 0] += 1
                bumped.append(id)
            }
        }
        var reset: [String] = []
        for (id, step) in steps.sorted(by: { $0.key < $1.key }) {
            let keep =
                (step.status == .success || step.status == .skipped) && !compensated.contains(id)
                && !id.hasSuffix(".compensate") && id != "on_failure"
            if !keep {
                reset.append(id)
                steps[id] = nil
            }
        }
        deletedStepIDs = reset
        let previous = run.status
        run.status = .running
        run.error = nil
        run.output = nil
        run.completedAt = nil
        run.compensated = nil
        run.deadLetter = false
        run.updatedAt = now
        runChanged = true
        events.append(
            NewEvent(
                "run_resumed",
                data: [
                    "previous_status": .string(previous.rawValue), "steps_reset": .array(reset.map { .string($0) }),
                    "new_idempotency_keys": .array(bumped.sorted().map { .string($0) }),
                ]
            )
        )
        deleteTasks = .all
        if let timeout = plan.timeoutMs {
            newTasks.append(
                NewTask(
                    stepID: nil,
                    kind: .runTimeout,
                    availableAt: now.addingTimeInterval(Double(timeout) / 1000),
                    priority: run.priority
                )
            )
        }
        for i in plan.topologicalOrder {
            guard !run.status.isTerminal, !isFailing else { break }
            let planned = plan.steps[i]
            guard steps[planned.id] == nil else { continue }
            if planned.dependencies.isEmpty { activate(planned) } else { readyOrSkip(planned) }
        }
        completeIfDone()
    }

    /// Failures after which the step's effect is known not to have happened. Retriable ones (timeouts, 5xx, lost
    /// connections) leave it unknown, and so do refusals to store what the remote answered.
    static func settlesEffect(_ error: JSONValue?) -> Bool {
        guard let error, error["retriable"]?.boolValue == false, let code = error["code"]?.stringValue else { return false }
        return !["response_too_large", "output_too_large", "output_too_deep", "cancelled"].contains(code)
    }

    private mutating func skip(_ planned: WorkflowPlan.Step, reason: String) {
        put(StepRunRecord(runID: run.id, stepID: planned.id, status: .skipped, completedAt: now, updatedAt: now))
        events.append(NewEvent("step_skipped", stepID: planned.id, data: ["reason": .string(reason)]))
        stepSettled(planned)
    }

    /// A rendered config that breaks the rules a constant one is held to at registration, or that is too large.
    private func configProblem(_ planned: WorkflowPlan.Step, _ input: JSONValue) -> (code: String, message: String)? {
        if let (field, message) = planned.type.renderedConfigProblems(input, limits: plan.limits).first {
            return ("invalid_config", "config.\(field) \(message)")
        }
        if input.boundedSize(limit: plan.limits.maxOutputBytes, maxDepth: plan.limits.maxOutputDepth) == nil {
            return (
                "config_too_large",
                "the rendered config is larger than \(plan.limits.maxOutputBytes) bytes or nests deeper than \(plan.limits.maxOutputDepth) levels"
            )
        }
        return nil
    }

    /// A step result or run output that may not be stored: too large, or nested too deep to be read back.
    private func outputProblem(_ output: JSONValue, what: String) -> StepFailure? {
        guard output.boundedSize(limit: plan.limits.maxOutputBytes, maxDepth: plan.limits.maxOutputDepth) == nil else { return nil }
        let deep = output.nests(deeperThan: plan.limits.maxOutputDepth)
        return StepFailure(
            code: deep ? "output_too_deep" : "output_too_large",
            message: deep
                ? "\(what) nests deeper than \(plan.limits.maxOutputDepth) levels"
                : "\(what) is larger than \(plan.limits.maxOutputBytes) bytes",
            retriable: false
        )
    }

    private mutating func failUnstarted(_ planned: WorkflowPlan.Step, code: String, message: String) {
        let failure = StepFailure(code: code, message: message, retriable: false)
        let step = StepRunRecord(runID: run.id, stepID: planned.id, status: .failed, error: failure.json, updatedAt: now)
        fail(step, planned, failure)
    }

    /// Whether a finished dependency lets its dependents run.
    private func settled(_ dependency: WorkflowPlan.Step) -> Bool {
        switch steps[dependency.id]?.status {
        case .success?, .skipped?: true
        case .failed?: dependency.continueOnError
        default: false
        }
    }

    /// A step finished (SUCCESS, SKIPPED, or FAILED with `continue_on_error`): wake the dependents whose
    /// dependencies have all settled.
    private mutating func stepSettled(_ planned: WorkflowPlan.Step) {
        for dependentIndex in planned.dependents {
            guard !run.status.isTerminal, !isFailing else { return }
            let dependent = plan.steps[dependentIndex]
            guard steps[dependent.id] == nil else { continue }
            readyOrSkip(dependent)
        }
        completeIfDone()
    }

    /// Activates `dependent` when every dependency has settled, or skips it when it lies on a branch a `switch` did not
    /// take or every dependency was skipped.
    private mutating func readyOrSkip(_ dependent: WorkflowPlan.Step) {
        let dependencies = dependent.dependencies.map { plan.steps[$0] }
        guard dependencies.allSatisfy(settled) else { return }
        for dependency in dependencies where dependency.type == .switch {
            guard let output = steps[dependency.id]?.output, steps[dependency.id]?.status == .success else { continue }
            let taken = output["branch"]?.integer(in: 0...Int(Int32.max))
            if dependency.untakenTargets(taken: taken).contains(dependent.id) {
                skip(dependent, reason: "branch not taken by '\(dependency.id)'")
                return
            }
        }
        if dependencies.allSatisfy({ steps[$0.id]?.status == .skipped }) {
            skip(dependent, reason: "every dependency was skipped")
        } else {
            activate(dependent)
        }
    }

    private mutating func completeIfDone() {
        guard !run.status.isTerminal, !isFailing, plan.steps.allSatisfy({ steps[$0.id]?.status.isTerminal ?? false }) else { return }
        let output: JSONValue
        if plan.context == .foreachBody, let last = plan.steps.last {
            output = steps[last.id]?.output ?? .null  // an item's result is the output of its last nested step
        } else if let template = plan.output {
            do {
                output = try template.render(in: scope(reading: Array(plan.steps.indices)))
            } catch {
                failRun(step: nil, code: "output_error", message: "output: \(error.message)")
                return
            }
        } else {
            var fields: [String: JSONValue] = [:]
            for sink in plan.sinks where steps[plan.steps[sink].id]?.status == .success {
                fields[plan.steps[sink].id] = steps[plan.steps[sink].id]?.output ?? .null
            }
            output = .object(fields)
        }
        if let problem = outputProblem(output, what: "the run's output") {
            failRun(step: nil, code: problem.code, message: problem.message)
            return
        }
        run.output = output
        finish(.completed, error: nil, event: "run_completed")
    }

    // MARK: failure handling

    /// True between a failure and the end of the run (compensations and `on_failure` are running).
    private var isFailing: Bool { run.error != nil && !run.status.isTerminal }

    private mutating func failRun(step: String?, code: String, message: String) {
        guard !run.status.isTerminal, !isFailing else { return }
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let step { error["step_id"] = .string(step) }
        run.error = .object(error)
        run.updatedAt = now
        runChanged = true
        stopUnfinished()
        continueFailure()
    }

    /// Runs the next compensation (latest completed step first), then `on_failure`, then ends the run FAILED.
    private mutating func continueFailure() {
        let next = plan.steps.filter { planned in
            planned.compensation != nil && steps[planned.id]?.status == .success && steps[planned.id + ".compensate"] == nil
        }.max { a, b in
            let ta = steps[a.id]?.completedAt ?? .distantPast
            let tb = steps[b.id]?.completedAt ?? .distantPast
            return ta == tb ? a.index < b.index : ta < tb
        }
        if let next, let compensation = next.compensation?.step {
            if run.status != .compensating {
                run.status = .compensating
                runChanged = true
                events.append(NewEvent("run_compensating", data: ["error": run.error ?? .null]))
            }
            activateAttached(compensation)
            return
        }
        if let onFailure = plan.onFailure, steps[onFailure.id] == nil {
            activateAttached(onFailure)
            return
        }
        var error = run.error?.objectValue ?? [:]
        let compensations = steps.values.filter { $0.stepID.hasSuffix(".compensate") }
        if !compensations.isEmpty {
            let failed = compensations.filter { $0.status != .success }.sorted { $0.stepID < $1.stepID }
            run.compensated = failed.isEmpty
            if !failed.isEmpty {
                error["compensation_errors"] = .array(failed.map { ["step_id": .string($0.stepID), "error": $0.error ?? .null] })
            }
        }
        if let onFailure = steps["on_failure"], onFailure.status == .failed {
            error["on_failure_error"] = onFailure.error ?? .null
        }
        finish(.failed, error: .object(error), event: "run_failed")
    }

    /// Queues a compensation or `on_failure`: its config may read any step's outputs and the run's error.
    private mutating func activateAttached(_ planned: WorkflowPlan.Step) {
        let input: JSONValue
        do {
            input = try planned.config.render(in: scope(reading: Array(plan.steps.indices)))
        } catch {
            let failure = StepFailure(code: "template_error", message: "config: \(error.message)", retriable: false)
            fail(StepRunRecord(runID: run.id, stepID: planned.id, status: .failed, updatedAt: now), planned, failure)
            return
        }
        if let problem = configProblem(planned, input) {
            let failure = StepFailure(code: problem.code, message: problem.message, retriable: false)
            fail(StepRunRecord(runID: run.id, stepID: planned.id, status: .failed, updatedAt: now), planned, failure)
            return
        }
        queue(planned.id, input: input)
    }

    /// Ends the run: every unfinished step becomes CANCELLED and the run's step tasks are removed. Steps never
    /// reached keep no record. Children still running are cancelled and the parent is told, by control tasks.
    private mutating func finish(_ status: RunStatus, error: JSONValue?, event: String, notifyParent: Bool = true) {
        if status != .completed { stopUnfinished() }
        run.status = status
        run.error = error
        run.completedAt = now
        run.updatedAt = now
        run.deadLetter = status == .failed && run.parentRunID == nil
        runChanged = true
        newTasks.removeAll { !$0.kind.isControl }
        deleteTasks = .all
        if notifyParent, run.parentRunID != nil {
            // Leased to the node that finished the run when there is one, so it tells the parent without a claim.
            newTasks.append(
                NewTask(
                    stepID: nil,
                    kind: .notifyParent,
                    availableAt: now,
                    priority: run.priority,
                    leaseOwner: dispatch?.owner,
                    leaseExpiresAt: dispatch?.leaseExpiresAt
                )
            )
        }
        var data: [String: JSONValue] = ["status": .string(status.rawValue)]
        if let error { data["error"] = error }
        if let compensated = run.compensated { data["compensated"] = .bool(compensated) }
        events.append(NewEvent(event, data: .object(data)))
    }

    /// Cancels every queued, executing or waiting step (their results, if any arrive, are fenced off).
    private mutating func stopUnfinished() {
        var stopped: [String] = []
        for id in steps.keys.sorted() {
            guard var step = steps[id], !step.status.isTerminal else { continue }
            if step.state?["awaits_children"]?.boolValue == true {
                newTasks.append(NewTask(stepID: id, kind: .cancelChildren, availableAt: now, priority: run.priority))
            }
            step.status = .cancelled
            step.state = nil
            step.completedAt = now
            step.updatedAt = now
            put(step)
            stopped.append(id)
            events.append(NewEvent("step_cancelled", stepID: id))
        }
        newTasks.removeAll { $0.stepID.map(stopped.contains) ?? false && $0.kind == .step }
        deleteTasks = deleteTasks.adding(steps: stopped)
    }

    private mutating func startRunIfPending() {
        guard run.status == .pending else { return }
        run.status = .running
        run.startedAt = now
        run.updatedAt = now
        runChanged = true
        events.append(NewEvent("run_started"))
    }

    // MARK: helpers

    private mutating func put(_ step: StepRunRecord) {
        if !changedStepIDs.contains(step.stepID) { changedStepIDs.append(step.stepID) }
        steps[step.stepID] = step
    }

    private func scope(reading indices: [Int]) -> ExpressionScope {
        var stepValues: [String: JSONValue] = [:]
        for i in indices {
            let id = plan.steps[i].id
            if let s = steps[id] {
                var value: [String: JSONValue] = ["status": .string(s.status.rawValue), "output": s.output ?? .null]
                if let error = s.error { value["error"] = error }
                stepValues[id] = .object(value)
            }
        }
        var runValue: [String: JSONValue] = [
            "id": .string(run.id), "workflow": .string(run.workflowName), "version": .string(run.workflowVersion),
        ]
        if let error = run.error { runValue["error"] = error }
        var roots: [String: JSONValue] = ["steps": .object(stepValues), "run": .object(runValue)]
        if plan.context == .foreachBody {
            roots["item"] = run.input["item"] ?? .null
            roots["index"] = run.input["index"] ?? .null
        }
        roots["input"] = scopeInput
        return ExpressionScope(roots: roots)
    }

    /// What `input` means in expressions: the run's input, or for a `foreach` item its parent's (as copied).
    private var scopeInput: JSONValue {
        plan.context == .foreachBody ? run.input["input"] ?? .object([:]) : run.input
    }

    private func mutation() -> RunMutation {
        RunMutation(
            run: runChanged ? run : nil,
            steps: changedStepIDs.compactMap { steps[$0] },
            deleteSteps: deletedStepIDs.filter { steps[$0] == nil },
            events: events,
            deleteTasks: deleteTasks,
            newTasks: newTasks,
            spawn: spawn,
            releaseRuns: releaseRuns
        )
    }
}
