import Hummingbird
import WorkflowPrimitive
import WorkflowWire

extension WorkflowAPI {
    /// Health probes, dead letters and the cluster view.
    func addOperationRoutes<Context: RequestContext>(to router: Router<Context>) {
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
        let v1 = router.group("/api/v1")
        v1.get("/dead-letters") { request, _ in
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let page = try await queries.deadLetters(cursor: query.get("cursor"), limit: try pageSize(request), tenantID: tenant(of: request))
            return try respond(page)
        }
        v1.delete("/dead-letters/:run_id") { request, context in
            try await queries.dismissDeadLetter(try context.parameters.require("run_id"), tenantID: tenant(of: request))
            return Response(status: .noContent)
        }
        v1.get("/cluster/nodes") { _, _ in try respond(try await queries.cluster()) }
    }
}
