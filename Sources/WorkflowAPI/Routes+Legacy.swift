import Hummingbird
import WorkflowPrimitive
import WorkflowWire

extension WorkflowAPI {
    /// The original system's paths under `/api/workflows`, kept as aliases so its clients keep working.
    func addLegacyRoutes(to legacy: RouterGroup<APIRequestContext>) {
        legacy.post("/run") { request, context in try await execute(request, context, context.authorize(.workflowExecute), reference: nil) }
        legacy.post("/run/:id") { request, context in
            try await execute(request, context, context.authorize(.workflowExecute), reference: try context.workflowReference())
        }
        legacy.get("/status/:run_id") { _, context in
            let principal = try context.authorize(.workflowRead)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            return try respond(try await queries.runDetail(try context.parameters.require("run_id"), tenantID: principal.tenantID))
        }
        legacy.get("/data/:run_id") { _, context in
            let principal = try context.authorize(.workflowRead)
            try await checkRun(try context.parameters.require("run_id"), visibleTo: principal)
            return try respond(try await queries.runOutputs(try context.parameters.require("run_id"), tenantID: principal.tenantID))
        }
        legacy.get("/list") { request, context in try await listWorkflows(request, context.authorize(.workflowRead)) }
        legacy.post("/cancel/:run_id") { _, context in
            try await cancel(context, context.authorize(.workflowExecute), try context.parameters.require("run_id"))
        }
        legacy.get("/definition/:id") { _, context in
            let principal = try context.authorize(.workflowRead)
            let reference = try context.workflowReference()
            return try respond(Wire.workflow(try visible(try await registry.resolve(reference, tenantID: principal.tenantID), to: principal).record))
        }
    }
}
