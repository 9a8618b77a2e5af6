import Foundation
import Hummingbird
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Health probes, dead letters and the cluster view.
    func addOperationRoutes(to router: Router<APIRequestContext>) {
        router.get("/health") { _, _ in try respond(HealthStatus(status: "ok")) }
        // Ready means this node can do its work now: not shutting down, its engine reaching the database, and the
        // database answering this probe within two seconds.
        router.get("/health/ready") { _, _ in
            if let reason = engine.notReadyReason { throw WorkflowError(.unavailable, reason) }
            do {
                try await queries.store.ping()
                return try respond(HealthStatus(status: "ready"))
            } catch {
                throw WorkflowError(.unavailable, "the database does not answer")
            }
        }
        // The description of the API is public, like the probes: it holds no data.
        router.get("/openapi.json") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.json))
            )
        }
        router.get("/api-docs") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: APIDocsPage.contentSecurityPolicy],
                body: ResponseBody(byteBuffer: ByteBuffer(string: APIDocsPage.html))
            )
        }
        // The node's figures span every tenant (workflow names are labels): only a key of the default tenant with
        // metrics:read (the monitor role, or admin) scrapes them.
        router.get("/metrics") { _, context in
            guard try context.authorize(.metricsRead).tenantID == Principal.platformTenant else {
                throw WorkflowError(.forbidden, "metrics span every tenant: only a key of the default tenant may read them")
            }
            guard let metrics = engine.metrics else { throw WorkflowError(.notFound, "this node does not collect metrics") }
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: await metrics.render()))
            )
        }
        let v1 = router.group("/api/v1")
        v1.get("/dead-letters") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            var page = try await queries.deadLetters(cursor: query.get("cursor"), limit: try pageSize(request), tenantID: principal.tenantID)
            page.items = page.items.filter { principal.sees(workflow: $0.workflowName) }
            return try respond(page)
        }
        v1.delete("/dead-letters/:run_id") { _, context in
            let principal = try context.authorize(.workflowExecute)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            let runID = try context.parameters.require("run_id")
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: clock.now(),
                context: context.audit,
                action: "dead_letter.dismiss",
                target: "run:\(runID)"
            )
            try await queries.dismissDeadLetter(runID, tenantID: principal.tenantID, audit: [audit])
            return Response(status: .noContent)
        }
        v1.get("/cluster/nodes") { _, context in
            // Nodes and hosts belong to the platform, not to a tenant.
            guard try context.authorize(.admin).isPlatformAdmin else {
                throw WorkflowError(.forbidden, "only an admin of the default tenant sees the cluster")
            }
            return try respond(try await queries.cluster())
        }
    }
}
