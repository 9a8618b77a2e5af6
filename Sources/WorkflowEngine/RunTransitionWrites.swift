import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The writes one transition of a run accumulates, and the parts of a transition that need no plan: claiming a task,
/// ending the run, stopping its unfinished steps, and turning the writes into a `RunMutation`.
///
/// Claims and cancellations run inside the driver's locked transaction, where no plan can be loaded: they use
/// `PlanlessTransition`. Every other transition is a `RunStateMachine`, which always has its plan.
protocol RunTransitionWrites {
    var now: Date { get }
    var dispatch: RunStateMachine.Dispatch? { get }
    var run: RunRecord { get set }
    var steps: [String: StepRunRecord] { get set }
    var runChanged: Bool { get set }
    var changedStepIDs: [String] { get set }
    var deletedStepIDs: [String] { get set }
    var events: [NewEvent] { get set }
    var newTasks: [NewTask] { get set }
    var deleteTasks: TaskDeletion { get set }
    var spawn: [RunInsertParams] { get set }
    var releaseRuns: [String] { get set }
}

/// A claim or a cancellation: a transition that needs no plan.
struct PlanlessTransition: RunTransitionWrites {
    let now: Date
    var dispatch: RunStateMachine.Dispatch? { nil }
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

    init(snapshot: RunSnapshot, now: Date) {
        self.run = snapshot.run
        self.steps = snapshot.steps
        self.now = now
    }
}

extension RunTransitionWrites {
    mutating func claim(_ task: TaskRecord, owner: String) {
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

    /// Ends the run: every unfinished step becomes CANCELLED and the run's step tasks are removed. Steps never
    /// reached keep no record. Children still running are cancelled and the parent is told, by control tasks.
    mutating func finish(_ status: RunStatus, error: JSONValue?, event: String, notifyParent: Bool = true, actor: String? = nil) {
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
        if let actor { data["actor"] = .string(actor) }
        events.append(NewEvent(event, data: .object(data)))
    }

    /// Cancels every queued, executing or waiting step (their results, if any arrive, are fenced off).
    mutating func stopUnfinished() {
        var stopped: [String] = []
        for id in steps.keys.sorted() {
            guard var step = steps[id], !step.status.isTerminal else { continue }
            if step.state?.awaitsChildren == true {
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

    mutating func startRunIfPending() {
        guard run.status == .pending else { return }
        run.status = .running
        run.startedAt = now
        run.updatedAt = now
        runChanged = true
        events.append(NewEvent("run_started"))
    }

    mutating func put(_ step: StepRunRecord) {
        if !changedStepIDs.contains(step.stepID) { changedStepIDs.append(step.stepID) }
        steps[step.stepID] = step
    }

    func mutation() -> RunMutation {
        var mutation = RunMutation(
            run: runChanged ? run : nil,
            steps: changedStepIDs.compactMap { steps[$0] },
            deleteSteps: deletedStepIDs.filter { steps[$0] == nil },
            events: events,
            deleteTasks: deleteTasks,
            newTasks: newTasks,
            spawn: spawn,
            releaseRuns: releaseRuns
        )
        mutation.outbox = outboxEvents()
        return mutation
    }

    /// The subscriber events this transition causes (written with it: see `OutboxEvent`). Runs and failed steps are
    /// reported for top-level runs (a child's outcome reaches its parent's step); approvals for every run.
    func outboxEvents() -> [OutboxEvent] {
        var outbox: [OutboxEvent] = []
        let topLevel = run.parentRunID == nil
        func add(_ type: String, stepID: String? = nil, _ extra: [String: JSONValue] = [:]) {
            var payload: [String: JSONValue] = [
                "run_id": .string(run.id), "workflow": .string(run.workflowName), "version": .string(run.workflowVersion),
            ]
            if let stepID { payload["step_id"] = .string(stepID) }
            payload.merge(extra) { _, new in new }
            outbox.append(
                OutboxEvent(
                    id: RecordID.make(now: now),
                    tenantID: run.tenantID,
                    type: type,
                    at: now,
                    correlationID: run.rootRunID ?? run.id,
                    payload: .object(payload)
                )
            )
        }
        for event in events {
            switch event.type {
            case "run_created" where topLevel:
                add("run.started", run.createdBy.map { ["created_by": .string($0)] } ?? [:])
            case "run_completed", "run_failed", "run_cancelled", "run_timed_out":
                guard topLevel else { continue }
                var extra: [String: JSONValue] = ["status": .string(run.status.rawValue)]
                if let code = run.error?["code"] { extra["error_code"] = code }
                add("run.\(run.status.rawValue.lowercased())", extra)
            case "approval_requested":
                add("approval.requested", stepID: event.stepID)
            case "approval_decided":
                var extra: [String: JSONValue] = [:]
                extra["actor"] = event.data["actor"]
                extra["decision"] = event.data["decision"]
                add("approval.decided", stepID: event.stepID, extra)
            default: break
            }
        }
        if topLevel {
            for id in changedStepIDs {
                guard let step = steps[id], step.status == .failed else { continue }
                var extra: [String: JSONValue] = ["attempt": .number(Double(step.attempt))]
                if let code = step.error?["code"] { extra["error_code"] = code }
                add("step.failed", stepID: id, extra)
            }
        }
        return outbox
    }
}
