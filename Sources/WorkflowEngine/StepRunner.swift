import Foundation
import Tracing
import WorkflowPrimitive
import WorkflowStore

/// Runs claimed step attempts on the node's workers and hands their outcomes to the committer; stops executions that
/// outlive their timeout.
struct StepRunner: Sendable {
    let node: EngineNode
    let executors: StepExecutors
    let managed: ManagedSteps

    /// One worker: runs queued attempts one at a time until the queue closes.
    func work() async {
        while let batch = await node.ready.next(max: 1), let work = batch.first {
            let began = ContinuousClock.now
            var type = "unknown"
            guard let result = await execute(work, type: &type) else {
                node.releaseCapacity([work.task.id])
                await node.handBack([work.task.id])
                continue
            }
            // A stopped execution's outcome ("cancelled") says nothing about the step: whoever owns the task now decides.
            switch node.books.withLock({ $0.ended(task: work.task.id) }) {
            case .abandoned:
                node.releaseCapacity([])  // the books freed its room: wake the claimer if it waits for room
            case .timedOut(let timeout):
                node.metrics?.stepAttempt(type: type, outcome: "timed_out", duration: ContinuousClock.now - began)
                let failure = StepFailure(code: "timeout", message: "step did not finish within \(timeout.milliseconds) ms", retriable: true)
                node.completions.push(Completion(work: work, result: .failure(failure)))
            case .finished:
                node.metrics?.stepAttempt(type: type, outcome: result.outcome, duration: ContinuousClock.now - began)
                node.completions.push(Completion(work: work, result: result))
            }
        }
    }

    /// Stops executions that outlive their timeout; runs until the workers have drained.
    ///
    /// One watcher per node rather than a sleeping timer per step: a cancelled sleep keeps its timer until its deadline,
    /// which cost ~800 bytes per step for five minutes.
    func watchTimeouts() async {
        while !node.books.withLock({ $0.drained }) {
            if Task.isCancelled {
                // A cancelled task's sleep returns at once: wait on a timer instead of spinning until the workers drain.
                await withCheckedContinuation { done in DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { done.resume() } }
            } else {
                try? await Task.sleep(for: .milliseconds(50))
            }
            let now = ContinuousClock.now
            for task in node.books.withLock({ $0.overdue(now: now) }) { task.cancel() }
        }
    }

    /// Runs one step attempt; nil when it could not begin because the store did not answer (the task is handed back
    /// rather than charged a failed attempt).
    private func execute(_ work: Work, type: inout String) async -> StepResult? {
        let loaded: WorkflowPlan?
        do {
            loaded = try await node.plan(for: work.run)
        } catch {
            node.storeFailed("loading a run's definition", operation: "reading", error)
            return nil
        }
        guard let plan = loaded, let planned = plan.step(for: work.step.stepID) else {
            return .failure(StepFailure(code: "definition_missing", message: "the run's definition cannot be loaded", retriable: true))
        }
        type = planned.type.rawValue
        if planned.type.isEngineManaged { return await managed.execute(planned, work) }
        guard let executor = executors[planned.type] else {
            return .failure(StepFailure(code: "no_executor", message: "no executor for \(planned.type.rawValue)", retriable: false))
        }
        // `${secrets.NAME}` was stored as `***`: the values go into this execution's input only, and come out of
        // whatever it returns.
        var input = work.step.input ?? .object([:])
        var revealed: [String] = []
        if planned.config.usesSecrets {
            let secretFields = planned.config.secretFields
            let values: [String: String]
            do {
                values = try await node.secretValues(tenantID: work.run.tenantID, names: planned.config.secretNames)
            } catch {
                return .failure(StepFailure(code: error.code, message: error.message, retriable: error.retriable))
            }
            for field in secretFields {
                let text = field.parts.map { part in
                    switch part {
                    case .text(let t): t
                    case .secret(let name): values[name] ?? ""
                    case .expression: ""
                    }
                }.joined()
                input = input.replacing(at: field.path[...], with: .string(text))
            }
            revealed = values.values.sorted { $0.count > $1.count }
        }
        let execution = StepExecution(
            runID: work.run.id,
            stepID: planned.id,
            type: planned.type,
            input: input,
            attempt: work.step.attempt,
            state: work.step.state?.executorState,
            now: node.clock.now(),
            keyGeneration: work.run.keyGenerations[StepRef(planned.id).owner] ?? 0,
            tenantID: work.run.tenantID,
            tenantSettings: planned.type == .httpRequest ? await node.tenantSettings(work.run.tenantID) : TenantSettings()
        )
        let configured = node.configuration.defaultStepTimeout
        let timeout: Duration? = planned.timeoutMs.map { .milliseconds($0) } ?? (configured > .zero ? configured : nil)
        // A span per attempt, in the run's trace (only when a tracer gave the run one).
        let span = work.run.traceParent.map { parent in
            let span = startSpan("step \(planned.type.rawValue)", context: RunTracing.context(traceParent: parent), ofKind: .internal)
            span.attributes["uwf.run_id"] = work.run.id
            span.attributes["uwf.step_id"] = planned.id
            span.attributes["uwf.step_type"] = planned.type.rawValue
            span.attributes["uwf.attempt"] = work.step.attempt
            return span
        }
        let spanContext = span?.context
        // An unstructured task only so that cancellation, lost leases and the timeout watcher can stop this execution;
        // it is awaited here.
        let handle = Task {
            guard let spanContext else { return await executor.execute(execution) }
            return await ServiceContext.withValue(spanContext) { await executor.execute(execution) }
        }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        node.books.withLock { $0.began(task: work.task.id, runID: work.run.id, execution: handle, deadline: deadline, timeout: timeout) }
        let result = await handle.value.masking(revealed)
        if let span {
            if case .failure(let failure) = result { span.setStatus(SpanStatus(code: .error, message: failure.code)) }
            span.attributes["uwf.outcome"] = result.outcome
            span.end()
        }
        return result
    }
}

extension StepResult {
    /// The outcome label of an attempt in the metrics.
    var outcome: String {
        switch self {
        case .success: "succeeded"
        case .failure: "failed"
        case .suspend: "suspended"
        case .startChild: "child_started"
        }
    }
}
