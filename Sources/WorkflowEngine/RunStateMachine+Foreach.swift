import Foundation
import WorkflowPrimitive
import WorkflowStore

/// `foreach`: one child run per item, released up to the concurrency, each finished item releasing the next.
extension RunStateMachine {
    /// A `foreach` creates one child run per item at once (their inputs hold the items, so the parent never rereads
    /// them) and releases `max_concurrency` of them; each finished item releases the next.
    mutating func activateForeach(_ planned: WorkflowPlan.Step, input: JSONValue) {
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
            var child = RunRecord(
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
                // The person who started the tree started its items: an approval inside must not be theirs to give.
                createdBy: run.createdBy,
                priority: run.priority,
                createdAt: now,
                updatedAt: now
            )
            child.traceParent = run.traceParent
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
        step.state = .foreach(ForeachProgress(base: base, total: items.count, next: released, active: released, continueOnError: continueOnError))
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

    /// An item of the `foreach` at `stepID` finished: count it, release the next, and collect once the last is done
    /// (a failed item fails the step unless `continue_on_error`).
    mutating func itemFinished(_ child: RunRecord, step: StepRunRecord, stepID: String) {
        var step = step
        guard case .foreach(var progress)? = step.state, let index = child.itemIndex,
            RecordID.item(base: progress.base, index: index) == child.id, progress.phase == .items
        else { return }
        progress.done += 1
        progress.active = max(0, progress.active - 1)
        if child.status != .completed {
            progress.failed += 1
            events.append(
                NewEvent(
                    "foreach_item_failed",
                    stepID: stepID,
                    data: [
                        "index": .number(Double(index)), "child_run_id": .string(child.id), "error": child.error ?? .null,
                    ]
                )
            )
            if !progress.continueOnError {
                step.state = .foreach(progress)
                step.status = .executing
                steps[stepID] = step
                if progress.next < progress.total || progress.active > 0 {
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
                    )
                )
                return
            }
        }
        if progress.next < progress.total {
            releaseRuns.append(RecordID.item(base: progress.base, index: progress.next))
            progress.next += 1
            progress.active += 1
        }
        if progress.done == progress.total {
            // Every item has finished: the step runs once more to collect the results in item order.
            progress.phase = .collect
            newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: now, priority: run.priority))
        }
        step.state = .foreach(progress)
        step.updatedAt = now
        put(step)
    }
}
