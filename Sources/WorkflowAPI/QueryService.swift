import Foundation
import WorkflowEngine
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowWire

/// Every read the API answers, scoped to a tenant, answered in wire types. Handlers go through it, never to the store.
struct QueryService: Sendable {
    let store: any WorkflowStore
    let registry: WorkflowRegistry
    let clock: any WorkflowClock
    let nodeTimeout: Duration

    /// The definition ids a `{id}` path segment stands for: one id, or every version of a name.
    func definitionIDs(matching reference: String, tenantID: String, sees: (String) -> Bool = { _ in true }) async throws -> [String] {
        if RecordID.looksLikeID(reference), let definition = try await registry.definition(id: reference, tenantID: tenantID),
            sees(definition.record.name)
        {
            return [definition.record.id]
        }
        let versions = try await store.definitionVersions(tenantID: tenantID, name: reference).filter { sees($0.name) }
        guard !versions.isEmpty else { throw WorkflowError(.workflowNotFound, "no workflow \(reference) is registered") }
        return versions.map(\.id)
    }

    func workflows(name: String?, limit: Int, cursor: String?, tenantID: String) async throws -> Page<Workflow> {
        let records = try await registry.list(DefinitionListParams(tenantID: tenantID, name: name, limit: limit + 1, after: cursor))
        let page = Array(records.prefix(limit))
        return Page(items: page.map(Wire.workflow), nextCursor: records.count > limit ? page.last?.id : nil)
    }

    func runs(_ params: RunListParams, limit: Int) async throws -> Page<RunSummary> {
        var params = params
        params.limit = limit + 1
        let runs = try await store.runList(params)
        let page = Array(runs.prefix(limit))
        return Page(items: page.map(Wire.runSummary), nextCursor: runs.count > limit ? page.last?.id : nil)
    }

    /// A run with its steps: DAG steps in declaration order, then compensations in the order they ran, then on_failure.
    func run(_ runID: String, tenantID: String) async throws -> (RunRecord, [StepRunRecord]) {
        guard let run = try await store.runGet(tenantID: tenantID, id: runID) else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        var steps = try await store.stepList(runID: runID)
        if let plan = try? await registry.definition(id: run.definitionID, tenantID: tenantID)?.plan.body(at: run.bodyPath) {
            func rank(_ s: StepRunRecord) -> (Int, Date) {
                if let i = plan.stepIndex[s.stepID] { return (i, .distantPast) }
                return (StepRef(s.stepID).isOnFailure ? Int.max : Int.max - 1, s.startedAt ?? s.updatedAt)
            }
            steps.sort { rank($0) < rank($1) }
        }
        return (run, steps)
    }

    func runDetail(_ runID: String, tenantID: String) async throws -> RunDetail {
        let (run, steps) = try await run(runID, tenantID: tenantID)
        return Wire.runDetail(run, steps: steps)
    }

    func runOutputs(_ runID: String, tenantID: String) async throws -> RunOutputs {
        let (run, steps) = try await run(runID, tenantID: tenantID)
        var outputs: [String: JSONValue] = [:]
        for step in steps { outputs[step.stepID] = step.output ?? .null }
        return RunOutputs(runId: run.id, status: run.status, input: run.input, output: run.output, steps: outputs)
    }

    func history(_ runID: String, after: Int, limit: Int, tenantID: String) async throws -> Page<RunEvent> {
        guard try await store.runGet(tenantID: tenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        let events = try await store.eventList(runID: runID, afterSeq: after, limit: limit + 1)
        let page = Array(events.prefix(limit))
        return Page(items: page.map(Wire.event), nextCursor: events.count > limit ? page.last.map { String($0.seq) } : nil)
    }

    /// Approval steps waiting for decisions; the cursor is `<run id>/<step id>` of the last one of the previous page.
    func pendingApprovals(tenantID: String, limit: Int, cursor: String?) async throws -> Page<PendingApproval> {
        var after: (String, String)?
        if let cursor {
            let parts = cursor.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw WorkflowError(.invalidRequest, "cursor must be the next_cursor of a previous page") }
            after = (parts[0], parts[1])
        }
        let rows = try await store.approvalsPending(tenantID: tenantID, after: after, limit: limit + 1)
        let page = Array(rows.prefix(limit))
        let items = page.compactMap { run, step -> PendingApproval? in
            guard let progress = step.state?.approval else { return nil }
            return PendingApproval(
                runId: run.id,
                stepId: step.stepID,
                workflowName: run.workflowName,
                workflowVersion: run.workflowVersion,
                initiator: run.createdBy,
                approversRequired: progress.required,
                approvals: progress.approvals.map { ApprovalInfo(actor: $0.actor, at: WireCoding.time($0.at), comment: $0.comment) },
                allowedRoles: progress.roles,
                message: progress.message,
                requestedAt: WireCoding.time(step.startedAt ?? step.updatedAt),
                expiresAt: WireCoding.time(progress.deadline)
            )
        }
        return Page(items: items, nextCursor: rows.count > limit ? page.last.map { "\($0.run.id)/\($0.step.stepID)" } : nil)
    }

    func deadLetters(cursor: String?, limit: Int, tenantID: String) async throws -> Page<DeadLetter> {
        let runs = try await store.deadLetterList(tenantID: tenantID, before: cursor, limit: limit + 1)
        let page = Array(runs.prefix(limit))
        return Page(items: page.map(Wire.deadLetter), nextCursor: runs.count > limit ? page.last?.id : nil)
    }

    func dismissDeadLetter(_ runID: String, tenantID: String, audit: [AuditRecord] = []) async throws {
        guard try await store.runGet(tenantID: tenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        guard try await store.deadLetterDismiss(tenantID: tenantID, runID: runID, audit: audit) else {
            throw WorkflowError(.notFound, "run \(runID) is not a dead letter")
        }
    }

    func cluster() async throws -> ClusterStatus {
        let now = clock.now()
        let leader = try await store.leaderGet(name: LeaderElector.sweeper).flatMap { $0.expiresAt > now ? $0.owner : nil }
        let nodes = try await store.nodeList().map { node in
            ClusterNode(
                id: node.id,
                host: node.host,
                startedAt: WireCoding.time(node.startedAt),
                lastHeartbeatAt: WireCoding.time(node.heartbeatAt),
                heldTasks: node.heldTasks,
                alive: now.timeIntervalSince(node.heartbeatAt) < nodeTimeout.seconds,
                leader: node.id == leader
            )
        }
        return ClusterStatus(nodes: nodes, leader: leader)
    }
}
