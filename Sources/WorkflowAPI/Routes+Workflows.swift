import Hummingbird
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Definitions: register, list, read, retire and activate, delete, and the runs of a workflow.
    func addWorkflowRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/workflows") { request, context in try await registerWorkflow(request, context, context.authorize(.workflowWrite)) }
        v1.get("/workflows") { request, context in try await listWorkflows(request, context.authorize(.workflowRead)) }
        v1.get("/workflows/:id") { request, context in
            let principal = try context.authorize(.workflowRead)
            _ = try queryParameters(request, allowed: ["version"])
            let reference = try context.workflowReference()
            let version = request.uri.queryParameters.get("version")
            let definition = try await registry.resolve(reference, version: version, tenantID: principal.tenantID)
            return try respond(Wire.workflow(try visible(definition, to: principal).record))
        }
        for action in WorkflowRegistry.LifecycleAction.allCases {
            v1.post("/workflows/:id/\(action.rawValue)") { request, context in
                let principal = try context.authorize(action == .approve || action == .reject ? .approvalDecide : .workflowWrite)
                return try await lifecycle(request, context, principal, reference: try context.workflowReference(), action: action)
            }
        }
        v1.get("/workflows/:id/versions/:from/diff/:to") { request, context in
            let principal = try context.authorize(.workflowRead)
            _ = try queryParameters(request, allowed: [])
            let name = try context.workflowReference()
            let from = try visible(
                try await registry.resolve(name, version: try context.parameters.require("from"), tenantID: principal.tenantID),
                to: principal
            )
            let to = try visible(
                try await registry.resolve(name, version: try context.parameters.require("to"), tenantID: principal.tenantID),
                to: principal
            )
            return try respond(
                DefinitionDiff(
                    name: from.record.name,
                    from: from.record.version,
                    to: to.record.version,
                    changes: DefinitionDiffer.diff(from: from.record.spec, to: to.record.spec).map {
                        DefinitionChange(op: $0.op, path: $0.path, from: $0.from, to: $0.to)
                    }
                )
            )
        }
        v1.delete("/workflows/:id") { request, context in
            let principal = try context.authorize(.workflowDelete)
            let definition = try await versionReference(request, principal, try context.workflowReference())
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: clock.now(),
                context: context.audit,
                action: "definition.delete",
                target: "definition:\(definition.record.name)@\(definition.record.version)"
            )
            try await registry.delete(id: definition.record.id, tenantID: principal.tenantID, audit: [audit])
            return Response(status: .noContent)
        }
        v1.get("/workflows/:id/history") { request, context in
            let principal = try context.authorize(.workflowRead)
            let ids = try await queries.definitionIDs(matching: try context.workflowReference(), tenantID: principal.tenantID) {
                principal.sees(workflow: $0)
            }
            return try await listRuns(request, principal, definitionIDs: ids)
        }
        v1.post("/workflows/:id/execute") { request, context in
            try await execute(request, context, context.authorize(.workflowExecute), reference: try context.workflowReference())
        }
    }

    func registerWorkflow(_ request: Request, _ context: APIRequestContext, _ principal: Principal) async throws -> Response {
        let data = try await body(request)
        let format = try mediaType(request, yamlAllowed: true)
        let document: JSONValue
        do {
            document = try WorkflowDocument.decode(
                data,
                format: format,
                maxDepth: configuration.limits.maxDefinitionDepth + 2,
                limits: configuration.limits
            )
        } catch {
            throw WorkflowError(.malformedBody, error.message)
        }
        if let name = document["name"]?.stringValue, !principal.sees(workflow: name) {
            throw WorkflowError(.forbidden, "this key may only register \(principal.workflows?.sorted().joined(separator: ", ") ?? "")")
        }
        switch try await registry.register(
            document: document,
            tenantID: principal.tenantID,
            createdBy: principal.subject,
            audit: context.audit,
            quotas: configuration.quotas,
            now: clock.now()
        ) {
        case .created(let definition):
            return try respond(Wire.workflow(definition.record), status: .created, location: "/api/v1/workflows/\(definition.record.id)")
        case .existing(let definition):
            return try respond(Wire.workflow(definition.record))
        }
    }

    func listWorkflows(_ request: Request, _ principal: Principal) async throws -> Response {
        let query = try queryParameters(request, allowed: ["name", "limit", "cursor"])
        let page = try await queries.workflows(
            name: query.get("name"),
            limit: try pageSize(request),
            cursor: query.get("cursor"),
            tenantID: principal.tenantID
        )
        return try respond(Page(items: page.items.filter { principal.sees(workflow: $0.name) }, nextCursor: page.nextCursor))
    }

    /// One version: `{id}` is a version id, or a name with `?version=`.
    func versionReference(_ request: Request, _ principal: Principal, _ reference: String) async throws -> CompiledDefinition {
        let version = try queryParameters(request, allowed: ["version"]).get("version")
        if version == nil, !RecordID.looksLikeID(reference) {
            throw WorkflowError(.invalidRequest, "name a version: use the version's id, or ?version= with the workflow's name")
        }
        return try visible(try await registry.resolve(reference, version: version, tenantID: principal.tenantID), to: principal)
    }

    func lifecycle(
        _ request: Request,
        _ context: APIRequestContext,
        _ principal: Principal,
        reference: String,
        action: WorkflowRegistry.LifecycleAction
    ) async throws -> Response {
        let definition = try await versionReference(request, principal, reference)
        let comment = try await commentedBody(request).comment
        let record = try await registry.lifecycle(
            id: definition.record.id,
            action: action,
            actor: principal.subject,
            comment: comment,
            tenantID: principal.tenantID,
            audit: context.audit,
            now: clock.now()
        )
        return try respond(Wire.workflow(record))
    }
}
