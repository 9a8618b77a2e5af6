import Foundation
import WorkflowPrimitive
import WorkflowStore

/// DAG advancement: activating ready steps (condition, config, queueing or claiming), `switch` branches, skips, and
/// completing the run when every step has settled.
extension RunStateMachine {
    /// A step became ready: evaluate its condition, render its config and queue it (or skip or fail it).
    mutating func activate(_ planned: WorkflowPlan.Step) {
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
        case .approval: return activateApproval(planned, input: input)
        case .foreach: return activateForeach(planned, input: input)
        default: break
        }
        queue(planned.id, input: input)
    }

    /// Creates the step's record and its task (claimed at once by the dispatching node when there is one).
    mutating func queue(_ stepID: String, input: JSONValue) {
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
    mutating func activateSwitch(_ planned: WorkflowPlan.Step, scope: ExpressionScope) {
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

    mutating func skip(_ planned: WorkflowPlan.Step, reason: String) {
        put(StepRunRecord(runID: run.id, stepID: planned.id, status: .skipped, completedAt: now, updatedAt: now))
        events.append(NewEvent("step_skipped", stepID: planned.id, data: ["reason": .string(reason)]))
        stepSettled(planned)
    }

    /// A rendered config that breaks the rules a constant one is held to at registration, or that is too large.
    func configProblem(_ planned: WorkflowPlan.Step, _ input: JSONValue) -> (code: String, message: String)? {
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

    mutating func failUnstarted(_ planned: WorkflowPlan.Step, code: String, message: String) {
        let failure = StepFailure(code: code, message: message, retriable: false)
        let step = StepRunRecord(runID: run.id, stepID: planned.id, status: .failed, error: failure.json, updatedAt: now)
        fail(step, planned, failure)
    }

    /// Whether a finished dependency lets its dependents run.
    func settled(_ dependency: WorkflowPlan.Step) -> Bool {
        switch steps[dependency.id]?.status {
        case .success?, .skipped?: true
        case .failed?: dependency.continueOnError
        default: false
        }
    }

    /// A step finished (SUCCESS, SKIPPED, or FAILED with `continue_on_error`): wake the dependents whose
    /// dependencies have all settled.
    mutating func stepSettled(_ planned: WorkflowPlan.Step) {
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
    mutating func readyOrSkip(_ dependent: WorkflowPlan.Step) {
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

    mutating func completeIfDone() {
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

    func scope(reading indices: [Int]) -> ExpressionScope {
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
    var scopeInput: JSONValue {
        plan.context == .foreachBody ? run.input["input"] ?? .object([:]) : run.input
    }
}
