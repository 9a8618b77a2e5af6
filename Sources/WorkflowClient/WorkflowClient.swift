import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive
@_exported import WorkflowWire

/// A typed client of the `uwf` REST API.
///
/// Errors the server reports come back as ``WorkflowError`` with the server's stable code and field issues.
public struct WorkflowClient: Sendable {
    public var baseURL: String
    let http: HTTPClient
    let timeout: TimeAmount
    let apiKey: String?

    /// - Parameters:
    ///   - baseURL: e.g. `http://127.0.0.1:8080`.
    ///   - apiKey: sent as `Authorization: Bearer <key>`.
    public init(baseURL: String, apiKey: String? = nil, httpClient: HTTPClient = WorkflowClient.defaultHTTPClient, timeout: Duration = .seconds(30)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
        self.http = httpClient
        self.timeout = .milliseconds(timeout.components.seconds * 1000)
    }

    /// The HTTP client used unless one is given: `HTTPClient.shared` but for decompression, which there refuses answers
    /// compressed more than 25 times, and a page of similar runs compresses better than that. Bounded by size instead
    /// (every body is collected with a limit as well). Lives as long as the process; it is never shut down.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.decompression = .enabled(limit: .size(256 << 20))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    // MARK: workflows

    /// Registers a definition from JSON or YAML text; `created` is false when it was already registered identically.
    public func registerWorkflow(_ document: Data, yaml: Bool) async throws -> (workflow: Workflow, created: Bool) {
        let (status, body) = try await send(
            .POST,
            "/api/v1/workflows",
            body: document,
            contentType: yaml ? "application/yaml" : "application/json"
        )
        return (try decode(Workflow.self, body), status == 201)
    }

    public func workflows(name: String? = nil, limit: Int? = nil, cursor: String? = nil) async throws -> Page<Workflow> {
        try decode(Page<Workflow>.self, try await get("/api/v1/workflows", query: ["name": name, "limit": limit.map(String.init), "cursor": cursor]))
    }

    /// A workflow by id, or by name (its highest version, or `version`).
    public func workflow(_ idOrName: String, version: String? = nil) async throws -> Workflow {
        try decode(Workflow.self, try await get("/api/v1/workflows/\(escape(idOrName))", query: ["version": version]))
    }

    // MARK: runs

    /// Starts a run of a workflow given by id or name (highest version unless `version` is given).
    public func start(workflow: String, version: String? = nil, input: JSONValue = .object([:]), priority: Int = 0) async throws -> RunAccepted {
        let request = ExecuteRequest(version: version, input: input, priority: priority)
        let (_, response) = try await send(
            .POST,
            "/api/v1/workflows/\(escape(workflow))/execute",
            body: request.body.canonicalData(),
            contentType: "application/json"
        )
        return try decode(RunAccepted.self, response)
    }

    public func run(_ runID: String) async throws -> RunDetail {
        try decode(RunDetail.self, try await get("/api/v1/executions/\(escape(runID))"))
    }

    public func runs(status: RunStatus? = nil, workflow: String? = nil, limit: Int? = nil, cursor: String? = nil) async throws -> Page<RunSummary> {
        let query = ["status": status?.rawValue, "workflow_id": workflow, "limit": limit.map(String.init), "cursor": cursor]
        return try decode(Page<RunSummary>.self, try await get("/api/v1/executions", query: query))
    }

    /// The child runs a run started (`sub_workflow` children and `foreach` items), newest first.
    public func children(_ runID: String, limit: Int? = nil, cursor: String? = nil) async throws -> Page<RunSummary> {
        let query = ["limit": limit.map(String.init), "cursor": cursor]
        return try decode(Page<RunSummary>.self, try await get("/api/v1/executions/\(escape(runID))/children", query: query))
    }

    /// A page of a run's history, after event `after`.
    public func history(_ runID: String, after: Int? = nil, limit: Int? = nil) async throws -> Page<RunEvent> {
        let query = ["after": after.map(String.init), "limit": limit.map(String.init)]
        return try decode(Page<RunEvent>.self, try await get("/api/v1/executions/\(escape(runID))/history", query: query))
    }

    @discardableResult
    public func cancel(_ runID: String) async throws -> RunStatusChange {
        try decode(RunStatusChange.self, try await send(.POST, "/api/v1/executions/\(escape(runID))/cancel", body: nil, contentType: nil).1)
    }

    /// Sends signal `name` with `payload` to a run (a waiting step completes with it, or the run keeps it).
    @discardableResult
    public func signal(_ runID: String, name: String, payload: JSONValue = .object([:])) async throws -> SignalAccepted {
        let (_, response) = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/signals/\(escape(name))",
            body: payload.canonicalData(),
            contentType: "application/json"
        )
        return try decode(SignalAccepted.self, response)
    }

    /// Resumes a FAILED or CANCELLED run in place.
    @discardableResult
    public func retry(_ runID: String) async throws -> RunStatusChange {
        try decode(RunStatusChange.self, try await send(.POST, "/api/v1/executions/\(escape(runID))/retry", body: nil, contentType: nil).1)
    }

    /// Starts a new run like `runID` (with `input` instead of its input when given); returns the new run.
    public func rerun(_ runID: String, input: JSONValue? = nil) async throws -> RerunAccepted {
        let (_, response) = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/rerun",
            body: RerunRequest(input: input).body.canonicalData(),
            contentType: "application/json"
        )
        return try decode(RerunAccepted.self, response)
    }

    public func deadLetters(limit: Int? = nil, cursor: String? = nil) async throws -> Page<DeadLetter> {
        try decode(Page<DeadLetter>.self, try await get("/api/v1/dead-letters", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    // MARK: identities

    /// Creates an API key; the answer is the only time its secret is shown.
    public func createAPIKey(_ request: CreateAPIKeyRequest) async throws -> CreatedAPIKey {
        let (_, response) = try await send(.POST, "/api/v1/api-keys", body: try WireCoding.encode(request), contentType: "application/json")
        return try decode(CreatedAPIKey.self, response)
    }

    /// The caller's tenant's keys (never their secrets).
    public func apiKeys(limit: Int? = nil, cursor: String? = nil) async throws -> Page<APIKeyInfo> {
        try decode(Page<APIKeyInfo>.self, try await get("/api/v1/api-keys", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    /// Revokes a key of the caller's tenant: every node refuses it within seconds.
    public func revokeAPIKey(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/api-keys/\(escape(id))", body: nil, contentType: nil)
    }

    public func createTenant(_ request: CreateTenantRequest) async throws -> TenantInfo {
        let (_, response) = try await send(.POST, "/api/v1/tenants", body: try WireCoding.encode(request), contentType: "application/json")
        return try decode(TenantInfo.self, response)
    }

    public func tenants(limit: Int? = nil, cursor: String? = nil) async throws -> Page<TenantInfo> {
        try decode(Page<TenantInfo>.self, try await get("/api/v1/tenants", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    public func cluster() async throws -> ClusterStatus {
        try decode(ClusterStatus.self, try await get("/api/v1/cluster/nodes"))
    }

    public func dismissDeadLetter(_ runID: String) async throws {
        _ = try await send(.DELETE, "/api/v1/dead-letters/\(escape(runID))", body: nil, contentType: nil)
    }

    /// Polls the run until it finishes or `timeout` passes, and returns it as last seen.
    public func wait(
        for runID: String,
        timeout: Duration = .seconds(300),
        pollInterval: Duration = .milliseconds(200)
    ) async throws
        -> RunDetail
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            let run = try await run(runID)
            if run.isFinished || ContinuousClock.now >= deadline { return run }
            try await Task.sleep(for: pollInterval)
        }
    }

    public func health() async throws -> Bool {
        try decode(HealthStatus.self, try await get("/health")).status == "ok"
    }

    /// Whether the node is ready for traffic (`/health/ready`: not shutting down, its database answering).
    public func ready() async throws -> Bool {
        try decode(HealthStatus.self, try await get("/health/ready")).status == "ready"
    }

    // MARK: transport

    func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    func get(_ path: String, query: [String: String?] = [:]) async throws -> Data {
        let items = query.compactMap { key, value in value.map { "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" }
        }
        let (_, body) = try await send(.GET, items.isEmpty ? path : path + "?" + items.sorted().joined(separator: "&"), body: nil, contentType: nil)
        return body
    }

    func send(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String?) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch let error as HTTPClientError where error == .connectTimeout || error == .deadlineExceeded {
            throw WorkflowError(.unavailable, "\(baseURL) did not answer in time")
        } catch let error as HTTPClientError {
            throw WorkflowError(.unavailable, "cannot reach \(baseURL) (\(error)); is `uwf serve` running there? (--server or UWF_SERVER)")
        } catch {
            let text = String(describing: error)
            if text.contains("certificate") || text.contains("CERTIFICATE") || text.contains("handshake") {
                throw WorkflowError(
                    .unavailable,
                    "\(baseURL) presented a TLS certificate this client does not trust; give its CA with --ca-cert (\(text.prefix(200)))"
                )
            }
            // Connection refused and friends come from NIO: say what it means for the user.
            throw WorkflowError(
                .unavailable,
                "cannot reach the uwf server at \(baseURL): is `uwf serve` running there? (--server or UWF_SERVER) (\(text.prefix(200)))"
            )
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            if let problem = try? WireCoding.decode(Problem.self, from: data) { throw problem.workflowError }
            let text = String(decoding: data.prefix(500), as: UTF8.self)
            throw WorkflowError(WorkflowError.Code(rawValue: "http_\(response.status.code)"), text.isEmpty ? "HTTP \(response.status.code)" : text)
        }
        return (Int(response.status.code), data)
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try WireCoding.decode(T.self, from: data)
        } catch {
            throw WorkflowError(.internalError, "the server's answer is not a \(T.self): \(error)")
        }
    }
}
