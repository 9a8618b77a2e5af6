import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Attempts: how a step attempt ends (success, failure with retries and backoff, suspension, a child to start).
extension RunStateMachine {
    mutating func complete(stepID: String, result: StepResult) {
        guard !run.status.isTerminal, var step = steps[stepID], step.status == .executing, let planned = plan.step(for: stepID)
        else { return }
        var result = result
        if planned.type == .waitForSignal, let name = step.state?.signalName, let payload = takeSignal(name, stepID: stepID) {
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
            step.state = .suspended(state)
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
            step.state = .awaitingChild(runID: child.run.id)
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

    mutating func succeed(_ step: StepRunRecord, _ planned: WorkflowPlan.Step, output: JSONValue) {
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
    mutating func fail(_ step: StepRunRecord, _ planned: WorkflowPlan.Step, _ failure: StepFailure) {
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

    /// A step result or run output that may not be stored: too large, or nested too deep to be read back.
    func outputProblem(_ output: JSONValue, what: String) -> StepFailure? {
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
}
