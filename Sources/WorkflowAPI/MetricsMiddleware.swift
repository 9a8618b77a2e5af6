import Hummingbird
import WorkflowObservability

/// Counts and times every request by method, route template (`/api/v1/executions/{run_id}`: bounded, unlike paths)
/// and status. Placed outside `ProblemMiddleware`, so errors arrive as the responses the client got; the time is until
/// the response's head (a live stream's length is not a latency).
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let metrics: WorkflowMetrics
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let began = ContinuousClock.now
        // A client may send any token as its method: only the known ones become label values.
        let method = Self.methods.contains(request.method.rawValue) ? request.method.rawValue : "other"
        do {
            let response = try await next(request, context)
            metrics.httpRequest(
                method: method,
                route: context.endpointPath ?? "unmatched",
                status: Int(response.status.code),
                duration: ContinuousClock.now - began
            )
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.httpRequest(
                method: method,
                route: context.endpointPath ?? "unmatched",
                status: Int(status),
                duration: ContinuousClock.now - began
            )
            throw error
        }
    }
}
