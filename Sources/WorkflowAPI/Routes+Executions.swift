import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import WorkflowEngine
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Runs: start, list, read, history, cancel, signal, retry, rerun, children.
    func addExecutionRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/execute") { request, context in try await execute(request, context, context.authorize(.workflowExecute), reference: nil) }
        v1.get("/executions") { request, context in try await listRuns(request, context.authorize(.workflowRead), definitionIDs: nil) }
        v1.get("/executions/:run_id") { _, context in
            let principal = try context.authorize(.workflowRead)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            return try respond(try await queries.runDetail(try context.parameters.require("run_id"), tenantID: principal.tenantID))
        }
        v1.get("/executions/:run_id/history") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["after", "limit"])
            let after =
                try query.get("after").map { text in
                    guard let n = Int(text), n >= 0 else { throw WorkflowError(.invalidRequest, "after must be a non-negative integer") }
                    return n
                } ?? 0
            let limit =
                try query.get("limit").map { text in
                    guard let n = Int(text), (1...10_000).contains(n) else {
                        throw WorkflowError(.invalidRequest, "limit must be an integer from 1 to 10000")
                    }
                    return n
                } ?? 1000
            let runID = try context.parameters.require("run_id")
            try await checkRun(runID, visibleTo: principal)
            return try respond(try await queries.history(runID, after: after, limit: limit, tenantID: principal.tenantID))
        }
        v1.post("/executions/:run_id/cancel") { _, context in
            try await cancel(context, context.authorize(.workflowExecute), try context.parameters.require("run_id"))
        }
        v1.post("/executions/:run_id/signals/:name") { request, context in
            let principal = try context.authorize(.workflowExecute)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            return try await signal(
                request,
                context,
                principal,
                runID: try context.parameters.require("run_id"),
                name: try context.parameters.require("name")
            )
        }
        v1.post("/executions/:run_id/retry") { _, context in
            let principal = try context.authorize(.workflowExecute)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            let run = try await engine.retry(
                runID: try context.parameters.require("run_id"),
                tenantID: principal.tenantID,
                actor: principal.subject,
                audit: context.audit
            )
            return try respond(RunStatusChange(runId: run.id, status: run.status), status: .accepted, location: "/api/v1/executions/\(run.id)")
        }
        v1.post("/executions/:run_id/rerun") { request, context in
            let principal = try context.authorize(.workflowExecute)
            let runID = try context.parameters.require("run_id")
            try await checkRun(runID, visibleTo: principal)
            let rerun = try RerunRequest.parse(try await jsonObject(request, allowEmpty: true))
            let run = try await engine.rerun(
                runID: runID,
                input: rerun.input,
                tenantID: principal.tenantID,
                actor: principal.subject,
                audit: context.audit
            )
            return try respond(
                RerunAccepted(runId: run.id, rerunOf: runID, status: run.status),
                status: .accepted,
                location: "/api/v1/executions/\(run.id)"
            )
        }
        v1.post("/executions/:run_id/approvals/:step_id") { request, context in
            let principal = try context.authorize(.approvalDecide)
            let runID = try context.parameters.require("run_id")
            try await checkRun(runID, visibleTo: principal)
            let (comment, fields) = try await commentedBody(request, allowEmpty: false, extra: ["decision"]) { fields, issues in
                if fields["decision"] != "approve" && fields["decision"] != "reject" {
                    issues.append(ValidationIssue(pointer: JSONPointer.root.appending("decision"), message: "must be 'approve' or 'reject'"))
                }
            }
            let decision = fields["decision"]?.stringValue
            let run = try await engine.decideApproval(
                runID: runID,
                stepID: try context.parameters.require("step_id"),
                decision: RunStateMachine.ApprovalDecision(
                    actor: principal.subject,
                    roles: Set(principal.roles.map(\.rawValue)),
                    approve: decision == "approve",
                    comment: comment,
                    definitionAuthor: nil
                ),
                tenantID: principal.tenantID,
                audit: context.audit
            )
            return try respond(try await queries.runDetail(run.id, tenantID: principal.tenantID))
        }
        v1.get("/approvals") { request, context in
            let principal = try context.authorize(.approvalDecide)
            let query = try queryParameters(request, allowed: ["status", "limit", "cursor", "mine"])
            if let status = query.get("status"), status != "pending" {
                throw WorkflowError(.invalidRequest, "status must be pending (decided approvals are in each run's history)")
            }
            let page = try await queries.pendingApprovals(
                tenantID: principal.tenantID,
                limit: try pageSize(request),
                cursor: query.get("cursor")
            )
            // An approver's inbox: only what this caller may decide (never their own runs, only their roles).
            let roles = Set(principal.roles.map(\.rawValue))
            let items = page.items.filter { item in
                principal.sees(workflow: item.workflowName) && item.initiator != principal.subject
                    && item.allowedRoles.contains(where: roles.contains) && !item.approvals.contains { $0.actor == principal.subject }
            }
            return try respond(Page(items: items, nextCursor: page.nextCursor))
        }
        v1.get("/executions/:run_id/children") { request, context in
            let principal = try context.authorize(.workflowRead)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            return try await listRuns(request, principal, definitionIDs: nil, parentRunID: try context.parameters.require("run_id"))
        }
    }

    func execute(_ request: Request, _ context: APIRequestContext, _ principal: Principal, reference: String?) async throws -> Response {
        let fields = try await jsonObject(request, allowEmpty: reference != nil)
        let key = try idempotencyKey(request)
        let parsed = try ExecuteRequest.parse(fields, pathNamesWorkflow: reference != nil)
        let target = reference ?? parsed.workflow ?? ""
        let limits = configuration.limits
        if parsed.input.boundedSize(limit: limits.maxInputBytes, maxDepth: limits.maxOutputDepth) == nil {
            throw WorkflowError(
                .inputTooLarge,
                "the run input is larger than \(limits.maxInputBytes) bytes or nests deeper than \(limits.maxOutputDepth) levels"
            )
        }
        let tenantID = principal.tenantID
        let definition = try visible(try await registry.resolveStartable(target, version: parsed.version, tenantID: tenantID), to: principal)
        let run: RunRecord
        var created = true
        if let key {
            // The same key and the same request answer with the same run; the request is what the body and path say.
            let canonical: JSONValue = [
                "target": .string(target), "version": parsed.version.map(JSONValue.string) ?? .null, "input": parsed.input,
                "priority": .number(Double(parsed.priority)),
            ]
            let hash = SHA256.hash(data: canonical.canonicalData()).map { String(format: "%02x", $0) }.joined()
            (run, created) = try await engine.start(
                definition: definition,
                input: parsed.input,
                idempotencyKey: key,
                requestHash: hash,
                tenantID: tenantID,
                priority: parsed.priority,
                createdBy: principal.subject,
                audit: context.audit
            )
        } else {
            run = try await engine.start(
                definition: definition,
                input: parsed.input,
                tenantID: tenantID,
                priority: parsed.priority,
                createdBy: principal.subject,
                audit: context.audit
            )
        }
        return try respond(Wire.accepted(run), status: created ? .accepted : .ok, location: "/api/v1/executions/\(run.id)")
    }

    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[Self.idempotencyKeyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7e }) else {
            throw WorkflowError(.invalidRequest, "Idempotency-Key must be 1-255 visible ASCII characters")
        }
        return key
    }

    func signal(_ request: Request, _ context: APIRequestContext, _ principal: Principal, runID: String, name: String) async throws -> Response {
        guard SignalName.isValid(name) else {
            throw WorkflowError(.invalidRequest, "a signal name is 1-128 characters of letters, digits, '.', '_' or '-'")
        }
        let data = try await body(request)
        var payload: JSONValue = .object([:])
        if !Self.isBlank(data) {
            _ = try mediaType(request, yamlAllowed: false)
            do {
                payload = try WorkflowDocument.decode(data, format: .json)
            } catch {
                throw WorkflowError(.malformedBody, error.message)
            }
        }
        let run = try await engine.signal(
            runID: runID,
            name: name,
            payload: payload,
            tenantID: principal.tenantID,
            actor: principal.subject,
            audit: context.audit
        )
        return try respond(SignalAccepted(runId: run.id, signal: name, status: run.status), status: .accepted)
    }

    func cancel(_ context: APIRequestContext, _ principal: Principal, _ runID: String) async throws -> Response {
        try await checkRun(runID, visibleTo: principal)
        let run = try await engine.cancel(
            runID: runID,
            tenantID: principal.tenantID,
            reason: "cancelled by \(principal.subject)",
            actor: principal.subject,
            audit: context.audit
        )
        return try respond(RunStatusChange(runId: run.id, status: run.status), status: .accepted)
    }

    func listRuns(_ request: Request, _ principal: Principal, definitionIDs: [String]?, parentRunID: String? = nil) async throws -> Response {
        var allowed: Set<String> = ["status", "limit", "cursor"]
        if definitionIDs == nil, parentRunID == nil { allowed.formUnion(["workflow_id", "parent_run_id"]) }
        let query = try queryParameters(request, allowed: allowed)
        let tenantID = principal.tenantID
        var status: RunStatus?
        if let text = query.get("status") {
            guard let s = RunStatus(rawValue: text.uppercased()) else {
                throw WorkflowError(.invalidRequest, "status must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = s
        }
        var ids = definitionIDs
        if ids == nil, let workflow = query.get("workflow_id") {
            ids = try await queries.definitionIDs(matching: workflow, tenantID: tenantID) { principal.sees(workflow: $0) }
        }
        if let visible = try await visibleDefinitionIDs(principal) {
            // A scoped key lists the runs of its workflows only.
            ids = ids.map { $0.filter(visible.contains) } ?? visible.sorted()
            if ids?.isEmpty == true { return try respond(Page<RunSummary>(items: [], nextCursor: nil)) }
        }
        let params = RunListParams(
            tenantID: tenantID,
            status: status,
            definitionIDs: ids,
            parentRunID: parentRunID ?? query.get("parent_run_id"),
            before: query.get("cursor")
        )
        return try respond(try await queries.runs(params, limit: try pageSize(request)))
    }
}
