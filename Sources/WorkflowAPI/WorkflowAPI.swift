import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WorkflowEngine
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowWire

/// The REST API: routes by resource (workflows, executions, operations, the original system's paths), request
/// parsing, and responses in the wire types the client shares. Reads go through `QueryService`, commands through the
/// engine and the registry. The contract is described in docs/api.md.
public struct WorkflowAPI: Sendable {
    let registry: WorkflowRegistry
    let engine: WorkflowEngine
    let queries: QueryService
    let configuration: APIConfiguration
    let clock: any WorkflowClock

    public init(
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        engine: WorkflowEngine,
        configuration: APIConfiguration,
        clock: any WorkflowClock = SystemClock()
    ) {
        self.registry = registry
        self.engine = engine
        self.configuration = configuration
        self.clock = clock
        self.queries = QueryService(store: store, registry: registry, clock: clock, nodeTimeout: configuration.nodeTimeout)
    }

    /// A router with every route and the problem+json error middleware.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        addRoutes(to: router)
        return router
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        addOperationRoutes(to: router)
        let v1 = router.group("/api/v1")
        addWorkflowRoutes(to: v1)
        addExecutionRoutes(to: v1)
        addLegacyRoutes(to: router.group("/api/workflows"))
    }

    /// The tenant a request acts for. One tenant until identities arrive (issue 11); every handler asks here.
    func tenant(of request: Request) -> String { defaultTenantID }
}

/// A response with a wire value as its JSON body.
func respond(_ value: some Encodable, status: HTTPResponse.Status = .ok, location: String? = nil) throws -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let location { headers[.location] = location }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(value))))
}
