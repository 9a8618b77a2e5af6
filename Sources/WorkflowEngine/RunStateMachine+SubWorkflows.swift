import Foundation
import WorkflowPrimitive
import WorkflowStore

/// `sub_workflow`: the step ends with its child run (its start is prepared by a worker: see `ManagedSteps`).
extension RunStateMachine {
    mutating func childFinished(_ child: RunRecord) {
        guard !run.status.isTerminal, !isFailing, let stepID = child.parentStepID, var step = steps[stepID], step.status == .waiting,
            let planned = plan.step(for: stepID)
        else { return }
        switch planned.type {
        case .subWorkflow:
            guard step.state == .awaitingChild(runID: child.id) else { return }
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
                complete(stepID: stepID, result: .success(child.output ?? .object([:])))
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
                    )
                )
            }
        case .foreach:
            itemFinished(child, step: step, stepID: stepID)
        default:
            return
        }
    }
}
