import Foundation
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// A run ready to be written: its row and first transition (``RunInsertParams``), and what to dispatch once written.
public struct PreparedStart: Sendable {
    public var params: RunInsertParams
    let run: RunRecord
    let steps: [StepRunRecord]
}

/// What callers ask of runs (start, signal, retry, rerun, cancel): each is one transition, committed before it returns,
/// and what it unblocked runs on this node at once.
struct RunCommands: Sendable {
    let node: EngineNode

    func start(
        definition: CompiledDefinition,
        input: JSONValue,
        tenantID: String,
        idempotencyKey: String?,
        requestHash: String?,
        priority: Int,
        parentRunID: String?,
        createdBy: String?,
        audit: AuditContext? = nil,
        auditAction: String = "run.start"
    ) async throws -> RunRecord {
        let prepared = try prepareStart(
            definition: definition,
            input: input,
            tenantID: tenantID,
            idempotencyKey: idempotencyKey,
            requestHash: requestHash,
            priority: priority,
            parentRunID: parentRunID,
            createdBy: createdBy,
            audit: audit,
            auditAction: auditAction
        )
        let tasks: [TaskRecord]
        if node.books.withLock({ $0.acceptingStarts }) {
            // Group commit: concurrent starts share one transaction, and so one flush to disk.
            tasks = try await withCheckedThrowingContinuation { continuation in
                if !node.starts.push(PendingStart(params: prepared.params, continuation: continuation)) {
                    continuation.resume(throwing: WorkflowError(.unavailable, "the engine is shutting down"))
                }
            }
        } else {
            tasks = try await node.store.runInsert([prepared.params], now: prepared.params.run.createdAt).first ?? []
        }
        started(prepared, tasks: tasks)
        return prepared.run
    }

    /// The rows of a new run and its first transition, not yet written (a schedule writes them with its fire).
    func prepareStart(
        definition: CompiledDefinition,
        input: JSONValue,
        tenantID: String,
        idempotencyKey: String?,
        requestHash: String?,
        priority: Int,
        parentRunID: String?,
        createdBy: String?,
        audit: AuditContext? = nil,
        auditAction: String = "run.start",
        events: [NewEvent] = []
    ) throws -> PreparedStart {
        let input = input.isNull ? .object([:]) : input
        guard case .object = input else {
            let issue = ValidationIssue(pointer: JSONPointer.root.appending("input"), message: "must be an object, got \(input.typeName)")
            throw WorkflowError(.invalidInput, "the run input must be a JSON object", issues: [issue])
        }
        let now = node.clock.now()
        let record = definition.record
        var run = RunRecord(
            id: RecordID.make(now: now),
            tenantID: tenantID,
            definitionID: record.id,
            workflowName: record.name,
            workflowVersion: record.version,
            status: .pending,
            input: input,
            idempotencyKey: idempotencyKey,
            requestHash: requestHash,
            parentRunID: parentRunID,
            createdBy: createdBy,
            priority: priority,
            createdAt: now,
            updatedAt: now
        )
        RunTracing.started(&run)
        var initial = RunStateMachine.start(run: run, plan: definition.plan, now: now, dispatch: node.dispatchTarget(now: now))
        let inserted = initial.run ?? run
        initial.run = nil
        initial.events.append(contentsOf: events)
        if let audit {
            initial.audit.append(
                AuditRecord(
                    tenantID: tenantID,
                    at: now,
                    context: audit,
                    action: auditAction,
                    target: "run:\(run.id)",
                    details: ["workflow": .string("\(record.name)@\(record.version)")]
                )
            )
        }
        return PreparedStart(params: RunInsertParams(run: inserted, initial: initial), run: inserted, steps: initial.steps)
    }

    /// Runs on this node what a start written elsewhere queued for it.
    func started(_ prepared: PreparedStart, tasks: [TaskRecord]) {
        node.observe(prepared.params.initial, run: prepared.run)
        node.dispatch(tasks, of: prepared.run, steps: prepared.steps)
    }

    func start(
        definition: CompiledDefinition,
        input: JSONValue,
        idempotencyKey key: String,
        requestHash: String,
        tenantID: String,
        priority: Int,
        createdBy: String?,
        audit: AuditContext? = nil
    ) async throws -> (run: RunRecord, created: Bool) {
        for _ in 0..<3 {
            if let existing = try await node.store.runFindByIdempotencyKey(tenantID: tenantID, key: key) {
                let expiry = node.clock.now().addingTimeInterval(-node.configuration.idempotencyKeyRetention.seconds)
                if existing.createdAt >= expiry {
                    guard existing.requestHash == requestHash else {
                        throw WorkflowError(
                            .idempotencyKeyReused,
                            "Idempotency-Key '\(key)' was used for run \(existing.id) with a different request; use a new key"
                        )
                    }
                    return (existing, false)
                }
                // Expired, and the leader has not freed it yet: free this one key (the leader frees the rest in bulk).
                _ = try await node.store.idempotencyRelease(tenantID: tenantID, key: key, before: expiry)
            }
            do {
                let run = try await start(
                    definition: definition,
                    input: input,
                    tenantID: tenantID,
                    idempotencyKey: key,
                    requestHash: requestHash,
                    priority: priority,
                    parentRunID: nil,
                    createdBy: createdBy,
                    audit: audit
                )
                return (run, true)
            } catch let error as WorkflowError where error.code == .idempotencyKeyTaken {
                continue  // a concurrent request with the same key won: answer with its run
            }
        }
        throw WorkflowError(.unavailable, "could not settle Idempotency-Key '\(key)'; try again")
    }

    func signal(
        runID: String,
        name: String,
        payload: JSONValue,
        tenantID: String,
        actor: String?,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await transition(runID: runID, tenantID: tenantID, audit: audit, action: "run.signal", details: ["signal": .string(name)]) {
            snapshot,
            plan,
            now,
            target in
            try RunStateMachine.signal(snapshot: snapshot, plan: plan, name: name, payload: payload, now: now, dispatch: target, actor: actor)
        }
    }

    func retry(runID: String, tenantID: String, actor: String?, audit: AuditContext? = nil) async throws -> RunRecord {
        let run = try await transition(runID: runID, tenantID: tenantID, audit: audit, action: "run.retry") { snapshot, plan, now, target in
            try RunStateMachine.resume(snapshot: snapshot, plan: plan, now: now, dispatch: target, actor: actor)
        }
        node.logger.info("run retried", metadata: [LogKey.run: .string(runID)])
        return run
    }

    func decideApproval(
        runID: String,
        stepID: String,
        decision: RunStateMachine.ApprovalDecision,
        tenantID: String,
        audit: AuditContext?
    ) async throws -> RunRecord {
        var decision = decision
        if let run = try await node.store.runGet(tenantID: tenantID, id: runID) {
            decision.definitionAuthor = try await node.registry.definition(id: run.definitionID, tenantID: tenantID)?.record.createdBy
        }
        var details: [String: JSONValue] = ["step": .string(stepID)]
        details["comment"] = decision.comment.map(JSONValue.string)
        let action = decision.approve ? "approval.approve" : "approval.reject"
        return try await transition(runID: runID, tenantID: tenantID, audit: audit, action: action, details: .object(details)) {
            [decision] snapshot, plan, now, target in
            try RunStateMachine.decideApproval(snapshot: snapshot, plan: plan, stepID: stepID, decision: decision, now: now, dispatch: target)
        }
    }

    func rerun(runID: String, input: JSONValue?, tenantID: String, actor: String?, audit: AuditContext? = nil) async throws -> RunRecord {
        guard let run = try await node.store.runGet(tenantID: tenantID, id: runID) else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        guard run.bodyPath == nil else {
            throw WorkflowError(.runNotRetryable, "run \(runID) is an item of a foreach; rerun its parent \(run.parentRunID ?? "")")
        }
        guard let definition = try await node.registry.definition(id: run.definitionID, tenantID: tenantID) else {
            throw WorkflowError(.workflowNotFound, "the definition of run \(runID) is no longer registered")
        }
        guard definition.record.status.startsRuns else {
            throw WorkflowError(
                definition.record.status == .retired ? .workflowRetired : .workflowNotActive,
                "\(definition.record.name) \(definition.record.version) is \(definition.record.status.rawValue) and starts no new runs"
            )
        }
        return try await start(
            definition: definition,
            input: input ?? run.input,
            tenantID: tenantID,
            idempotencyKey: nil,
            requestHash: nil,
            priority: run.priority,
            parentRunID: nil,
            createdBy: actor,
            audit: audit,
            auditAction: "run.rerun"
        )
    }

    func cancel(runID: String, tenantID: String, reason: String, actor: String?, audit: AuditContext? = nil) async throws -> RunRecord {
        guard try await node.store.runGet(tenantID: tenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        let now = node.clock.now()
        let entry = audit.map {
            AuditRecord(tenantID: tenantID, at: now, context: $0, action: "run.cancel", target: "run:\(runID)", details: ["reason": .string(reason)])
        }
        let request = RunTransitionRequest(runID: runID) { snapshot in
            var mutation = try RunStateMachine.cancel(snapshot: snapshot, reason: reason, now: now, actor: actor)
            if let entry { mutation.audit.append(entry) }
            return mutation
        }
        switch try await node.store.runTransitions([request], now: now).first {
        case .applied(let mutation, let tasks):
            node.stopExecutions(of: runID)
            guard let run = mutation.run else { throw WorkflowError(.internalError, "cancellation wrote no run") }
            node.dispatch(tasks, of: run, steps: mutation.steps, mutation: mutation)
            node.logger.info("run cancelled", metadata: [LogKey.run: .string(runID)])
            return run
        case .rejected(let error):
            throw error
        case .runNotFound, .fenced, nil:
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
    }

    /// Applies one plan-aware transition to a run outside any task (signals, retries) and runs what it unblocked.
    private func transition(
        runID: String,
        tenantID: String,
        audit: AuditContext?,
        action: String,
        details: JSONValue = .object([:]),
        decide: @escaping @Sendable (RunSnapshot, WorkflowPlan, Date, RunStateMachine.Dispatch?) throws -> RunMutation
    ) async throws -> RunRecord {
        guard let run = try await node.store.runGet(tenantID: tenantID, id: runID) else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        guard let plan = try await node.plan(for: run) else {
            throw WorkflowError(.internalError, "the definition of run \(runID) cannot be loaded")
        }
        let counted = await node.treeRuns(of: run, plan: plan)
        let now = node.clock.now()
        let target = node.dispatchTarget(now: now)
        let entry = audit.map { AuditRecord(tenantID: tenantID, at: now, context: $0, action: action, target: "run:\(runID)", details: details) }
        let request = RunTransitionRequest(runID: runID) { snapshot in
            var snapshot = snapshot
            snapshot.treeRuns = counted
            var mutation = try decide(snapshot, plan, now, target)
            if let entry { mutation.audit.append(entry) }
            return mutation
        }
        switch try await node.applyAndDispatch([request], runs: [run], now: now).first {
        case .applied(let mutation, _):
            return mutation.run ?? run
        case .rejected(let error):
            throw error
        case .runNotFound, .fenced, nil:
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
    }
}
