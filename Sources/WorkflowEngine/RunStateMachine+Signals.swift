import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Signals: `wait_for_signal` steps, signals delivered to a run, and signals kept until a step waits for them.
extension RunStateMachine {
    /// A `wait_for_signal` completes at once with a signal that arrived early, else waits (with a timeout task).
    mutating func activateWait(_ planned: WorkflowPlan.Step, input: JSONValue) {
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
            state: .awaitingSignal(name: name),
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

    mutating func signal(name: String, payload: JSONValue, actor: String?) throws(WorkflowError) {
        guard !run.status.isTerminal else {
            throw WorkflowError(.runFinished, "run \(run.id) has already finished (\(run.status.rawValue)); it takes no signals")
        }
        var received: [String: JSONValue] = ["signal": .string(name)]
        if let actor { received["actor"] = .string(actor) }
        events.append(NewEvent("signal_received", data: .object(received)))
        let waiting = steps.values.filter { $0.status == .waiting && $0.state?.signalName == name }
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
    mutating func takeSignal(_ name: String, stepID: String) -> JSONValue? {
        guard let i = run.pendingSignals.firstIndex(where: { $0.name == name }) else { return nil }
        let signal = run.pendingSignals.remove(at: i)
        runChanged = true
        events.append(NewEvent("signal_consumed", stepID: stepID, data: ["signal": .string(name)]))
        return signal.payload
    }
}
