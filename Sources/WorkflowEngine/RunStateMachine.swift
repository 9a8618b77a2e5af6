import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The pure transitions of one run: what to write when a run starts, a task is claimed, a step attempt ends,
/// or the run is cancelled. No I/O and no clock: the caller passes `now` and randomness, the driver writes the result.
public struct RunStateMachine {
    /// Where newly ready steps go: to the queue for any node, or claimed at once by the node that unblocked them.
    public struct Dispatch: Sendable {
        public var owner: String
        public var leaseExpiresAt: Date

        public init(owner: String, leaseExpiresAt: Date) {
            self.owner = owner
            self.leaseExpiresAt = leaseExpiresAt
        }
    }

    /// Nil for claims: the driver calls them inside its transaction, where no plan can be loaded.
    private let plan: WorkflowPlan!
    private let now: Date
    private let dispatch: Dispatch?
    private var run: RunRecord
    private var steps: [String: StepRunRecord]
    private var runChanged = false
    private var changedStepIDs: [String] = []
    private var events: [NewEvent] = []
    private var newTasks: [NewTask] = []
    private var deleteTasks: TaskDeletion = .none

    private init(plan: WorkflowPlan?, run: RunRecord, steps: [String: StepRunRecord], now: Date, dispatch: Dispatch?) {
        self.plan = plan
        self.run = run
        self.steps = steps
        self.now = now
        self.dispatch = dispatch
    }

    // MARK: entry points

    /// The first transition of a new run: history, the workflow timeout and the root steps.
    /// With `dispatch`, the root steps are claimed at once by that node (it runs them without polling).
    public static func start(run: RunRecord, plan: WorkflowPlan, now: Date, dispatch: Dispatch? = nil) -> RunMutation {
        var machine = RunStateMachine(plan: plan, run: run, steps: [:], now: now, dispatch: dispatch)
        machine.events.append(NewEvent("run_created", data: [
            "workflow": .string(run.workflowName), "version": .string(run.workflowVersion),
            "definition_id": .string(run.definitionID),
        ]))
        if let timeout = plan.timeoutMs {
            machine.newTasks.append(NewTask(
                stepID: nil, kind: .runTimeout, availableAt: now.addingTimeInterval(Double(timeout) / 1000), priority: run.priority))
        }
        for step in plan.steps where step.dependencies.isEmpty {
            machine.activate(step)
            if machine.run.status.isTerminal { break }
        }
        machine.completeIfDone()
        var mutation = machine.mutation()
        mutation.run = machine.run  // the run row is inserted as it stands after the first transition
        return mutation
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
        snapshot: RunSnapshot, plan: WorkflowPlan, stepID: String, result: StepResult, now: Date, dispatch: Dispatch?,
        random: Double
    ) -> RunMutation {
        var machine = RunStateMachine(plan: plan, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: dispatch)
        machine.complete(stepID: stepID, result: result, random: random)
        return machine.mutation()
    }

    /// Cancels the run: queued and executing steps become CANCELLED and every task is removed.
    /// - Throws: `run_not_cancellable` when the run has already finished.
    public static func cancel(snapshot: RunSnapshot, reason: String, now: Date) throws(WorkflowError) -> RunMutation {
        guard !snapshot.run.status.isTerminal else {
            throw WorkflowError(.runNotCancellable, "run \(snapshot.run.id) has already finished (\(snapshot.run.status.rawValue))")
        }
        var machine = RunStateMachine(plan: nil, run: snapshot.run, steps: snapshot.steps, now: now, dispatch: nil)
        machine.finish(.cancelled, error: ["code": "cancelled", "message": .string(reason)], event: "run_cancelled")
        return machine.mutation()
    }

    // MARK: transitions

    private mutating func claim(_ task: TaskRecord, owner: String) {
        switch task.kind {
        case .runTimeout:
            if !run.status.isTerminal {
                let limit = Int((task.availableAt.timeIntervalSince(run.createdAt) * 1000).rounded())
                finish(.failed, error: [
                    "code": "run_timeout", "message": .string("the run did not finish within its timeout of \(limit) ms"),
                ], event: "run_timed_out")
            }
            deleteTasks = .all
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
            if step.status == .executing, step.state != nil, task.leaseOwner == nil {
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
        guard !run.status.isTerminal, var step = steps[stepID], step.status == .executing,
            let planned = plan.stepIndex[stepID].map({ plan.steps[$0] })
        else { return }
        step.updatedAt = now
        switch result {
        case .success(let output):
            step.status = .success
            step.output = output
            step.error = nil
            step.state = nil
            step.completedAt = now
            put(step)
            events.append(NewEvent("step_succeeded", stepID: stepID, data: ["attempt": .number(Double(step.attempt))]))
            stepSettled(planned)
        case .failure(let failure):
            step.error = failure.json
            step.state = nil
            if failure.retriable, step.attempt < planned.retry.maxAttempts {
                let delay = planned.retry.delayMs(afterAttempt: step.attempt, random: random)
                step.status = .queued
                put(step)
                newTasks.append(NewTask(
                    stepID: stepID, kind: .step, availableAt: now.addingTimeInterval(Double(delay) / 1000), priority: run.priority))
                events.append(NewEvent("step_retrying", stepID: stepID, data: [
                    "attempt": .number(Double(step.attempt)), "delay_ms": .number(Double(delay)), "error": failure.json,
                ]))
            } else {
                step.status = .failed
                step.completedAt = now
                put(step)
                events.append(NewEvent("step_failed", stepID: stepID, data: [
                    "attempt": .number(Double(step.attempt)), "error": failure.json,
                ]))
                failRun(step: stepID, code: "step_failed", message: "step '\(stepID)' failed: \(failure.message)")
            }
        case .suspend(let until, let state):
            step.state = state
            put(step)
            newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: until, priority: run.priority))
            events.append(NewEvent("step_suspended", stepID: stepID, data: [
                "until_ms": .number((until.timeIntervalSince1970 * 1000).rounded()),
            ]))
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
        var step = StepRunRecord(runID: run.id, stepID: planned.id, status: .queued, input: input, updatedAt: now)
        events.append(NewEvent("step_queued", stepID: planned.id))
        if let dispatch {
            startRunIfPending()
            step.status = .executing
            step.attempt = 1
            step.startedAt = now
            newTasks.append(NewTask(
                stepID: planned.id, kind: .step, availableAt: now, priority: run.priority, leaseOwner: dispatch.owner,
                leaseExpiresAt: dispatch.leaseExpiresAt))
            events.append(NewEvent("step_started", stepID: planned.id, data: ["attempt": 1, "node": .string(dispatch.owner)]))
        } else {
            newTasks.append(NewTask(stepID: planned.id, kind: .step, availableAt: now, priority: run.priority))
        }
        put(step)
    }

    private mutating func skip(_ planned: WorkflowPlan.Step, reason: String) {
        put(StepRunRecord(runID: run.id, stepID: planned.id, status: .skipped, completedAt: now, updatedAt: now))
        events.append(NewEvent("step_skipped", stepID: planned.id, data: ["reason": .string(reason)]))
        stepSettled(planned)
    }

    private mutating func failUnstarted(_ planned: WorkflowPlan.Step, code: String, message: String) {
        let failure = StepFailure(code: code, message: message, retriable: false)
        put(StepRunRecord(runID: run.id, stepID: planned.id, status: .failed, error: failure.json, completedAt: now, updatedAt: now))
        events.append(NewEvent("step_failed", stepID: planned.id, data: ["attempt": 0, "error": failure.json]))
        failRun(step: planned.id, code: "step_failed", message: "step '\(planned.id)' failed: \(message)")
    }

    /// A step finished with SUCCESS or SKIPPED: wake the dependents whose dependencies have all settled.
    private mutating func stepSettled(_ planned: WorkflowPlan.Step) {
        for dependentIndex in planned.dependents {
            guard !run.status.isTerminal else { return }
            let dependent = plan.steps[dependentIndex]
            guard steps[dependent.id] == nil else { continue }
            let statuses = dependent.dependencies.map { steps[plan.steps[$0].id]?.status }
            guard statuses.allSatisfy({ $0 == .success || $0 == .skipped }) else { continue }
            if statuses.allSatisfy({ $0 == .skipped }) {
                skip(dependent, reason: "every dependency was skipped")
            } else {
                activate(dependent)
            }
        }
        completeIfDone()
    }

    private mutating func completeIfDone() {
        guard !run.status.isTerminal, plan.steps.allSatisfy({ steps[$0.id]?.status.isTerminal ?? false }) else { return }
        let output: JSONValue
        if let template = plan.output {
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
        run.output = output
        finish(.completed, error: nil, event: "run_completed")
    }

    private mutating func failRun(step: String?, code: String, message: String) {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let step { error["step_id"] = .string(step) }
        finish(.failed, error: .object(error), event: "run_failed")
    }

    /// Ends the run: every queued or executing step becomes CANCELLED and the run's tasks are removed.
    /// Steps never reached keep no record.
    private mutating func finish(_ status: RunStatus, error: JSONValue?, event: String) {
        if status != .completed {
            for id in steps.keys.sorted() {
                guard var step = steps[id], !step.status.isTerminal else { continue }
                step.status = .cancelled
                step.state = nil
                step.completedAt = now
                step.updatedAt = now
                put(step)
                events.append(NewEvent("step_cancelled", stepID: id))
            }
        }
        run.status = status
        run.error = error
        run.completedAt = now
        run.updatedAt = now
        runChanged = true
        newTasks.removeAll()
        deleteTasks = .all
        var data: [String: JSONValue] = ["status": .string(status.rawValue)]
        if let error { data["error"] = error }
        events.append(NewEvent(event, data: .object(data)))
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
                stepValues[id] = ["status": .string(s.status.rawValue), "output": s.output ?? .null]
            }
        }
        return ExpressionScope(roots: [
            "input": run.input, "steps": .object(stepValues),
            "run": ["id": .string(run.id), "workflow": .string(run.workflowName), "version": .string(run.workflowVersion)],
        ])
    }

    private func mutation() -> RunMutation {
        RunMutation(
            run: runChanged ? run : nil, steps: changedStepIDs.compactMap { steps[$0] }, events: events,
            deleteTasks: deleteTasks, newTasks: newTasks)
    }
}
