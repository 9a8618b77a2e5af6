import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import WorkflowEngine
import WorkflowIdentity
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
    let authentication: Authentication
    let limits: CallerLimits
    let identities: any IdentityStore
    let store: any WorkflowStore
    let auditWriter: AuditWriter
    /// Carries out schedule commands on this node (the leader's own `Scheduler` fires them).
    let scheduler: Scheduler
    /// Live streams open on this node (bounded by `configuration.maxStreams`).
    let streams = StreamGate()

    public init(
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        engine: WorkflowEngine,
        configuration: APIConfiguration,
        authentication: Authentication,
        limits: CallerLimits = CallerLimits(),
        clock: any WorkflowClock = SystemClock()
    ) {
        self.limits = limits
        self.registry = registry
        self.engine = engine
        self.configuration = configuration
        self.clock = clock
        self.authentication = authentication
        self.identities = store
        self.store = store
        self.auditWriter = AuditWriter(store: store)
        self.scheduler = Scheduler(
            store: store,
            registry: registry,
            engine: engine,
            isLeader: { false },
            clock: clock,
            logger: Logger(label: "uwf.schedules")
        )
        self.queries = QueryService(store: store, registry: registry, clock: clock, nodeTimeout: configuration.nodeTimeout)
        if let metrics = engine.metrics {
            // Read at each scrape: the shared queue's backlog, this node's executions and open streams.
            metrics.onScrape { [store, engine, streams, clock] in
                let now = clock.now()
                if let stats = try? await store.queueStats(now: now, limit: 100_000) {
                    metrics.queue(
                        ready: stats.ready,
                        oldestAge: stats.oldestAvailableAt.map { .milliseconds(Int64(now.timeIntervalSince($0) * 1000)) }
                    )
                } else {
                    metrics.databaseErrors("reading")
                }
                metrics.executions(active: engine.activeExecutions, capacity: engine.capacity)
                metrics.liveStreams(streams.count)
            }
        }
    }

    /// A router with every route, the problem+json error middleware and authentication.
    public func makeRouter() -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        if !configuration.trustedProxies.isEmpty { router.add(middleware: ClientAddressMiddleware(trusted: configuration.trustedProxies)) }
        // A server span per request, continuing the caller's W3C trace (`traceparent`); runs started here join it.
        router.add(middleware: TracingMiddleware<APIRequestContext>())
        if let metrics = engine.metrics { router.add(middleware: MetricsMiddleware(metrics: metrics)) }
        if configuration.compression { router.add(middleware: CompressionMiddleware()) }
        if !configuration.corsOrigins.isEmpty { router.add(middleware: CORSMiddleware(origins: Set(configuration.corsOrigins))) }
        router.add(middleware: ProblemMiddleware())
        let clock = clock
        router.add(middleware: AuthenticationMiddleware(authentication: authentication, limits: limits, clock: { clock.now() }, audit: auditWriter))
        router.add(middleware: AuditMiddleware(audit: auditWriter, clock: { clock.now() }))
        addOperationRoutes(to: router)
        let v1 = router.group("/api/v1")
        addWorkflowRoutes(to: v1)
        addExecutionRoutes(to: v1)
        addIdentityRoutes(to: v1)
        addGovernanceRoutes(to: v1)
        addScheduleRoutes(to: v1)
        addWebhookRoutes(to: v1)
        addEventRoutes(to: v1)
        addTemplateRoutes(to: v1)
        addRetentionRoutes(to: v1)
        addLegacyRoutes(to: router.group("/api/workflows"))
        return router
    }
}

/// A response with a wire value as its JSON body.
func respond(_ value: some Encodable, status: HTTPResponse.Status = .ok, location: String? = nil) throws -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let location { headers[.location] = location }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try WireCoding.encode(value))))
}
