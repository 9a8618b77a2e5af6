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
    private let http: HTTPClient
    private let timeout: TimeAmount
    private let apiKey: String?

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
    public func apiKeys() async throws -> Page<APIKeyInfo> {
        try decode(Page<APIKeyInfo>.self, try await get("/api/v1/api-keys"))
    }

    /// Revokes a key of the caller's tenant: every node refuses it within seconds.
    public func revokeAPIKey(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/api-keys/\(escape(id))", body: nil, contentType: nil)
    }

    public func createTenant(_ request: CreateTenantRequest) async throws -> TenantInfo {
        let (_, response) = try await send(.POST, "/api/v1/tenants", body: try WireCoding.encode(request), contentType: "application/json")
        return try decode(TenantInfo.self, response)
    }

    public func tenants() async throws -> Page<TenantInfo> {
        try decode(Page<TenantInfo>.self, try await get("/api/v1/tenants"))
    }

    // MARK: governance

    /// Moves a definition version through its lifecycle: `submit`, `approve`, `reject`, `deprecate`, `retire`, `activate`.
    public func lifecycle(_ action: String, workflow: String, version: String?, comment: String? = nil) async throws -> Workflow {
        let query = version.map { "?version=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? ""
        let (_, response) = try await send(
            .POST,
            "/api/v1/workflows/\(escape(workflow))/\(escape(action))\(query)",
            body: try WireCoding.encode(CommentRequest(comment: comment)),
            contentType: "application/json"
        )
        return try decode(Workflow.self, response)
    }

    public func diff(workflow: String, from: String, to: String) async throws -> DefinitionDiff {
        try decode(DefinitionDiff.self, try await get("/api/v1/workflows/\(escape(workflow))/versions/\(escape(from))/diff/\(escape(to))"))
    }

    /// Decides an `approval` step of a run.
    public func decide(runID: String, stepID: String, approve: Bool, comment: String? = nil) async throws -> RunDetail {
        let body = ApprovalDecisionRequest(decision: approve ? "approve" : "reject", comment: comment)
        let (_, response) = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/approvals/\(escape(stepID))",
            body: try WireCoding.encode(body),
            contentType: "application/json"
        )
        return try decode(RunDetail.self, response)
    }

    /// The caller's inbox: approval steps they may decide.
    public func pendingApprovals(limit: Int? = nil, cursor: String? = nil) async throws -> Page<PendingApproval> {
        try decode(
            Page<PendingApproval>.self,
            try await get("/api/v1/approvals", query: ["status": "pending", "limit": limit.map(String.init), "cursor": cursor])
        )
    }

    /// A page of the audit log: newest first, or in chain order after `after` (for export).
    public func audit(
        chainOrder: Bool = false,
        after: Int64? = nil,
        cursor: String? = nil,
        limit: Int? = nil,
        filters: [String: String] = [:]
    )
        async throws -> Page<AuditEntryInfo>
    {
        var query: [String: String?] = ["limit": limit.map(String.init), "cursor": cursor]
        if chainOrder {
            query["order"] = "chain"
            query["after"] = after.map(String.init)
        }
        for (key, value) in filters { query[key] = value }
        return try decode(Page<AuditEntryInfo>.self, try await get("/api/v1/audit", query: query))
    }

    public func verifyAudit(tenant: String? = nil, checkpoint: (seq: Int64, hash: String)? = nil) async throws -> AuditVerification {
        var query: [String: String?] = ["tenant": tenant]
        if let checkpoint {
            query["checkpoint_seq"] = String(checkpoint.seq)
            query["checkpoint_hash"] = checkpoint.hash
        }
        return try decode(AuditVerification.self, try await get("/api/v1/audit/verify", query: query))
    }

    public func setSecret(_ name: String, value: String) async throws -> SecretInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/secrets/\(escape(name))",
            body: try WireCoding.encode(SetSecretRequest(value: value)),
            contentType: "application/json"
        )
        return try decode(SecretInfo.self, response)
    }

    public func secrets() async throws -> Page<SecretInfo> {
        try decode(Page<SecretInfo>.self, try await get("/api/v1/secrets"))
    }

    public func deleteSecret(_ name: String) async throws {
        _ = try await send(.DELETE, "/api/v1/secrets/\(escape(name))", body: nil, contentType: nil)
    }

    /// Re-wraps every secret under the server's newest master key; returns how many were re-wrapped.
    public func rotateMasterKey() async throws -> JSONValue {
        let (_, response) = try await send(.POST, "/api/v1/secrets/rotate-master-key", body: nil, contentType: nil)
        return try decode(JSONValue.self, response)
    }

    public func tenantSettings() async throws -> TenantSettingsInfo {
        try decode(TenantSettingsInfo.self, try await get("/api/v1/tenant/settings"))
    }

    public func setTenantSettings(_ settings: TenantSettingsInfo) async throws -> TenantSettingsInfo {
        let (_, response) = try await send(.PUT, "/api/v1/tenant/settings", body: try WireCoding.encode(settings), contentType: "application/json")
        return try decode(TenantSettingsInfo.self, response)
    }

    /// Purges the tenant's finished runs created more than `olderThanDays` ago; returns how many top-level runs.
    public func purge(olderThanDays: Double) async throws -> Int {
        let body: JSONValue = ["older_than_days": .number(olderThanDays)]
        let (_, response) = try await send(.POST, "/api/v1/runs/purge", body: Data(body.canonicalString().utf8), contentType: "application/json")
        return Int(try decode(JSONValue.self, response)["purged"]?.numberValue ?? 0)
    }

    // MARK: webhooks and live events

    public func createWebhook(_ fields: JSONValue) async throws -> WebhookWithSecret {
        let (_, response) = try await send(.POST, "/api/v1/webhooks", body: Data(fields.canonicalString().utf8), contentType: "application/json")
        return try decode(WebhookWithSecret.self, response)
    }

    public func updateWebhook(_ id: String, _ fields: JSONValue) async throws -> WebhookInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/webhooks/\(escape(id))",
            body: Data(fields.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(WebhookInfo.self, response)
    }

    public func webhooks() async throws -> Page<WebhookInfo> { try decode(Page<WebhookInfo>.self, try await get("/api/v1/webhooks")) }

    public func webhook(_ id: String) async throws -> WebhookInfo { try decode(WebhookInfo.self, try await get("/api/v1/webhooks/\(escape(id))")) }

    public func deleteWebhook(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/webhooks/\(escape(id))", body: nil, contentType: nil)
    }

    public func rotateWebhookSecret(_ id: String, graceSeconds: Int?) async throws -> WebhookWithSecret {
        let body: JSONValue = graceSeconds.map { ["grace_seconds": .number(Double($0))] } ?? .object([:])
        let (_, response) = try await send(
            .POST,
            "/api/v1/webhooks/\(escape(id))/rotate-secret",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(WebhookWithSecret.self, response)
    }

    /// Deliveries, newest first: of one webhook, or of all.
    public func webhookDeliveries(
        webhook: String? = nil,
        status: String? = nil,
        limit: Int? = nil,
        cursor: String? = nil
    ) async throws
        -> Page<WebhookDeliveryInfo>
    {
        let path = webhook.map { "/api/v1/webhooks/\(escape($0))/deliveries" } ?? "/api/v1/webhook-deliveries"
        return try decode(
            Page<WebhookDeliveryInfo>.self,
            try await get(path, query: ["status": status, "limit": limit.map(String.init), "cursor": cursor])
        )
    }

    public func webhookDelivery(_ id: String) async throws -> WebhookDeliveryInfo {
        try decode(WebhookDeliveryInfo.self, try await get("/api/v1/webhook-deliveries/\(escape(id))"))
    }

    /// Redelivers deliveries by id, or every one of a webhook in `status` (default failed); returns how many.
    public func redeliver(ids: [String], webhook: String?, status: String?) async throws -> Int {
        var body: [String: JSONValue] = [:]
        if !ids.isEmpty { body["ids"] = .array(ids.map(JSONValue.string)) }
        if let webhook { body["webhook_id"] = .string(webhook) }
        if let status { body["status"] = .string(status) }
        let (_, response) = try await send(
            .POST,
            "/api/v1/webhook-deliveries/redeliver",
            body: Data(JSONValue.object(body).canonicalString().utf8),
            contentType: "application/json"
        )
        return Int(try decode(JSONValue.self, response)["redelivered"]?.numberValue ?? 0)
    }

    /// One Server-Sent Event.
    public struct StreamEvent: Sendable {
        public var id: String?
        public var type: String?
        public var data: String
    }

    /// Follows a Server-Sent Events stream (`/api/v1/events`, `/api/v1/executions/{id}/events`), reconnecting after
    /// the last event seen when the server ends the stream, until `handle` returns false or, with
    /// `endWhenClosed`, the server closes a stream that has ended for good (a finished run's).
    public func follow(
        _ path: String,
        after: String? = nil,
        endWhenClosed: Bool = false,
        _ handle: @Sendable (StreamEvent) async throws -> Bool
    ) async throws {
        var lastID = after
        while !Task.isCancelled {
            var request = HTTPClientRequest(url: baseURL + path)
            request.headers.add(name: "Accept", value: "text/event-stream")
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            if let lastID { request.headers.add(name: "Last-Event-ID", value: lastID) }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .hours(24))
            } catch {
                throw WorkflowError(.unavailable, "cannot reach the uwf server at \(baseURL): \(error)")
            }
            guard response.status == .ok else {
                let data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                if let problem = try? WireCoding.decode(Problem.self, from: data) { throw problem.workflowError }
                throw WorkflowError(WorkflowError.Code(rawValue: "http_\(response.status.code)"), "HTTP \(response.status.code)")
            }
            var buffer = ""
            var current = StreamEvent(id: nil, type: nil, data: "")
            for try await chunk in response.body {
                buffer += String(buffer: chunk)
                while let newline = buffer.firstIndex(of: "\n") {
                    let line = String(buffer[..<newline])
                    buffer = String(buffer[buffer.index(after: newline)...])
                    if line.isEmpty {
                        if !current.data.isEmpty {
                            if let id = current.id { lastID = id }
                            guard try await handle(current) else { return }
                        }
                        current = StreamEvent(id: nil, type: nil, data: "")
                    } else if line.hasPrefix("id: ") {
                        current.id = String(line.dropFirst(4))
                    } else if line.hasPrefix("event: ") {
                        current.type = String(line.dropFirst(7))
                    } else if line.hasPrefix("data: ") {
                        current.data += String(line.dropFirst(6))
                    }
                }
            }
            if endWhenClosed { return }
        }
    }

    // MARK: schedules

    /// Creates a schedule from its JSON form (`paused` and `note` may ride along).
    public func createSchedule(_ spec: JSONValue) async throws -> ScheduleInfo {
        let (_, response) = try await send(.POST, "/api/v1/schedules", body: Data(spec.canonicalString().utf8), contentType: "application/json")
        return try decode(ScheduleInfo.self, response)
    }

    public func replaceSchedule(_ id: String, _ spec: JSONValue) async throws -> ScheduleInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/schedules/\(escape(id))",
            body: Data(spec.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(ScheduleInfo.self, response)
    }

    public func schedules(limit: Int? = nil, cursor: String? = nil) async throws -> Page<ScheduleInfo> {
        try decode(Page<ScheduleInfo>.self, try await get("/api/v1/schedules", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    public func schedule(_ id: String) async throws -> ScheduleInfo {
        try decode(ScheduleInfo.self, try await get("/api/v1/schedules/\(escape(id))"))
    }

    public func deleteSchedule(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/schedules/\(escape(id))", body: nil, contentType: nil)
    }

    /// `action` is `pause` or `resume`.
    public func setSchedulePaused(_ id: String, _ action: String, note: String?) async throws -> ScheduleInfo {
        let body: JSONValue = note.map { ["note": .string($0)] } ?? .object([:])
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/\(escape(id))/\(action)",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(ScheduleInfo.self, response)
    }

    public func triggerSchedule(_ id: String) async throws -> ScheduleTriggered {
        let (_, response) = try await send(.POST, "/api/v1/schedules/\(escape(id))/trigger", body: nil, contentType: nil)
        return try decode(ScheduleTriggered.self, response)
    }

    public func backfillSchedule(_ id: String, from: String, to: String) async throws -> Page<ScheduleFireInfo> {
        let body: JSONValue = ["from": .string(from), "to": .string(to)]
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/\(escape(id))/backfill",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(Page<ScheduleFireInfo>.self, response)
    }

    public func previewSchedule(_ id: String, count: Int? = nil, after: String? = nil) async throws -> SchedulePreview {
        try decode(
            SchedulePreview.self,
            try await get("/api/v1/schedules/\(escape(id))/preview", query: ["count": count.map(String.init), "after": after])
        )
    }

    /// Fire times of a schedule not created yet.
    public func previewSchedule(spec: JSONValue, count: Int? = nil, after: String? = nil) async throws -> SchedulePreview {
        var query: [String] = []
        if let count { query.append("count=\(count)") }
        if let after { query.append("after=\(after.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? after)") }
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/preview" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")),
            body: Data(spec.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(SchedulePreview.self, response)
    }

    public func scheduleRuns(_ id: String, limit: Int? = nil, cursor: String? = nil) async throws -> Page<ScheduleFireInfo> {
        try decode(
            Page<ScheduleFireInfo>.self,
            try await get("/api/v1/schedules/\(escape(id))/runs", query: ["limit": limit.map(String.init), "cursor": cursor])
        )
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

    private func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    private func get(_ path: String, query: [String: String?] = [:]) async throws -> Data {
        let items = query.compactMap { key, value in value.map { "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" }
        }
        let (_, body) = try await send(.GET, items.isEmpty ? path : path + "?" + items.sorted().joined(separator: "&"), body: nil, contentType: nil)
        return body
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String?) async throws -> (Int, Data) {
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

    private func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
        do {
            return try WireCoding.decode(T.self, from: data)
        } catch {
            throw WorkflowError(.internalError, "the server's answer is not a \(T.self): \(error)")
        }
    }
}
