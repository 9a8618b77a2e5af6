import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Failure and saga: a failing run compensates the steps that succeeded (latest completion first), then runs
/// `on_failure`, then ends FAILED.
extension RunStateMachine {
    /// True between a failure and the end of the run (compensations and `on_failure` are running).
    var isFailing: Bool { run.error != nil && !run.status.isTerminal }

    mutating func failRun(step: String?, code: String, message: String) {
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
    mutating func continueFailure() {
        let next = plan.steps.filter { planned in
            planned.compensation != nil && steps[planned.id]?.status == .success && steps[StepRef.compensation(of: planned.id).id] == nil
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
        let compensations = steps.values.filter { StepRef($0.stepID).isCompensation }
        if !compensations.isEmpty {
            let failed = compensations.filter { $0.status != .success }.sorted { $0.stepID < $1.stepID }
            run.compensated = failed.isEmpty
            if !failed.isEmpty {
                error["compensation_errors"] = .array(failed.map { ["step_id": .string($0.stepID), "error": $0.error ?? .null] })
            }
        }
        if let onFailure = steps[StepRef.onFailure.id], onFailure.status == .failed {
            error["on_failure_error"] = onFailure.error ?? .null
        }
        finish(.failed, error: .object(error), event: "run_failed")
    }

    /// Queues a compensation or `on_failure`: its config may read any step's outputs and the run's error.
    mutating func activateAttached(_ planned: WorkflowPlan.Step) {
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
}
