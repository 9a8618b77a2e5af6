import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Resume: retrying a FAILED or CANCELLED run in place, with the Idempotency-Key rule for steps that run again.
extension RunStateMachine {
    mutating func resume(actor: String?) throws(WorkflowError) {
        guard run.status == .failed || run.status == .cancelled else {
            throw WorkflowError(.runNotRetryable, "only FAILED or CANCELLED runs can be retried; run \(run.id) is \(run.status.rawValue)")
        }
        guard run.bodyPath == nil else {
            throw WorkflowError(.runNotRetryable, "run \(run.id) is an item of a foreach; retry its parent \(run.parentRunID ?? "")")
        }
        let refs = Dictionary(uniqueKeysWithValues: steps.keys.map { ($0, StepRef($0)) })
        let compensated = Set(refs.values.compactMap { ref -> String? in ref.isCompensation ? ref.owner : nil })
        // An Idempotency-Key names one intended effect. A step whose effect is settled — undone by its compensation, or
        // known not to have happened (a definitive refusal) — intends a new effect when it runs again, so it gets a new
        // key; a step whose outcome is unknown (timeout, 5xx, cancelled mid-call) keeps its key, so the remote can
        // answer with what it did. on_failure runs again for a new failure: a new key too.
        var bumped: [String] = []
        for (id, step) in steps where refs[id]?.isCompensation == false {
            let undone = steps[StepRef.compensation(of: id).id]?.status == .success
            let refused = step.status == .failed && Self.settlesEffect(step.error)
            let handledFailure = refs[id] == .onFailure && (step.status == .success || refused)
            if undone || refused || handledFailure {
                run.keyGenerations[id, default: 0] += 1
                bumped.append(id)
            }
        }
        var reset: [String] = []
        for (id, step) in steps.sorted(by: { $0.key < $1.key }) {
            let keep = (step.status == .success || step.status == .skipped) && !compensated.contains(id) && refs[id]?.isDAGStep == true
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
        var data: [String: JSONValue] = [
            "previous_status": .string(previous.rawValue), "steps_reset": .array(reset.map { .string($0) }),
            "new_idempotency_keys": .array(bumped.sorted().map { .string($0) }),
        ]
        if let actor { data["actor"] = .string(actor) }
        events.append(NewEvent("run_resumed", data: .object(data)))
        deleteTasks = .all
        scheduleRunTimeout()
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
}
