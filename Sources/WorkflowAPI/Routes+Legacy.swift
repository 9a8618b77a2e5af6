import Hummingbird
import WorkflowPrimitive
import WorkflowWire

extension WorkflowAPI {
    /// The original system's paths under `/api/workflows`, kept as aliases so its clients keep working.
    func addLegacyRoutes<Context: RequestContext>(to legacy: RouterGroup<Context>) {
        legacy.post("/run") { request, _ in try await execute(request, reference: nil) }
        legacy.post("/run/:id") { request, context in try await execute(request, reference: try context.parameters.require("id")) }
        legacy.get("/status/:run_id") { request, context in
            try respond(try await queries.runDetail(try context.parameters.require("run_id"), tenantID: tenant(of: request)))
        }
        legacy.get("/data/:run_id") { request, context in
            try respond(try await queries.runOutputs(try context.parameters.require("run_id"), tenantID: tenant(of: request)))
        }
        legacy.get("/list") { request, _ in try await listWorkflows(request) }
        legacy.post("/cancel/:run_id") { request, context in try await cancel(request, try context.parameters.require("run_id")) }
        legacy.get("/definition/:id") { request, context in
            let reference = try context.parameters.require("id")
            return try respond(Wire.workflow(try await registry.resolve(reference, tenantID: tenant(of: request)).record))
        }
    }
}
