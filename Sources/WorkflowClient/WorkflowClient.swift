import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive

/// A typed client of the `uwf` REST API.
///
/// Errors the server reports come back as ``WorkflowError`` with the server's stable code and field issues.
public struct WorkflowClient: Sendable {
    public var baseURL: String
    private let http: HTTPClient
    private let timeout: TimeAmount

    /// - Parameter baseURL: e.g. `http://127.0.0.1:8080`.
    public init(baseURL: String, httpClient: HTTPClient = .shared, timeout: Duration = .seconds(30)) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = httpClient
        self.timeout = .milliseconds(timeout.components.seconds * 1000)
    }

    // MARK: workflows

    /// Registers a definition from JSON or YAML text; `created` is false when it was already registered identically.
    public func registerWorkflow(_ document: Data, yaml: Bool) async throws -> (workflow: WorkflowInfo, created: Bool) {
        let (status, body) = try await send(
            .POST,
            "/api/v1/workflows",
            body: document,
            contentType: yaml ? "application/yaml" : "application/json"
        )
        return (try decode(WorkflowInfo.self, body), status == 201)
    }

    public func workflows(limit: Int? = nil, cursor: String? = nil) async throws -> Page<WorkflowInfo> {
        let value = try await getJSON("/api/v1/workflows", query: ["limit": limit.map(String.init), "cursor": cursor])
        return Page(items: try decode([WorkflowInfo].self, value["workflows"] ?? []), nextCursor: value["next_cursor"]?.stringValue)
    }

    /// A workflow by id, or by name (its highest version).
    public func workflow(_ idOrName: String) async throws -> WorkflowInfo {
        try decode(WorkflowInfo.self, try await getJSON("/api/v1/workflows/\(escape(idOrName))"))
    }

    // MARK: runs

    /// Starts a run of a workflow given by id or name (highest version unless `version` is given).
    public func start(workflow: String, version: String? = nil, input: JSONValue = .object([:])) async throws -> RunStarted {
        var body: [String: JSONValue] = ["input": input]
        if let version { body["version"] = .string(version) }
        let (_, response) = try await send(
            .POST,
            "/api/v1/workflows/\(escape(workflow))/execute",
            body: JSONValue.object(body).canonicalData(),
            contentType: "application/json"
        )
        return try decode(RunStarted.self, response)
    }

    public func run(_ runID: String) async throws -> RunInfo {
        try decode(RunInfo.self, try await getJSON("/api/v1/executions/\(escape(runID))"))
    }

    public func runs(status: String? = nil, workflow: String? = nil, limit: Int? = nil, cursor: String? = nil) async throws -> Page<RunInfo> {
        let value = try await getJSON(
            "/api/v1/executions",
            query: ["status": status, "workflow_id": workflow, "limit": limit.map(String.init), "cursor": cursor]
        )
        return Page(items: try decode([RunInfo].self, value["executions"] ?? []), nextCursor: value["next_cursor"]?.stringValue)
    }

    /// The child runs a run started (`sub_workflow` children and `foreach` items), newest first.
    public func children(_ runID: String, limit: Int? = nil, cursor: String? = nil) async throws -> Page<RunInfo> {
        let value = try await getJSON(
            "/api/v1/executions/\(escape(runID))/children",
            query: ["limit": limit.map(String.init), "cursor": cursor]
        )
        return Page(items: try decode([RunInfo].self, value["executions"] ?? []), nextCursor: value["next_cursor"]?.stringValue)
    }

    public func history(_ runID: String) async throws -> [RunEventInfo] {
        try decode([RunEventInfo].self, try await getJSON("/api/v1/executions/\(escape(runID))/history")["events"] ?? [])
    }

    public func cancel(_ runID: String) async throws {
        _ = try await send(.POST, "/api/v1/executions/\(escape(runID))/cancel", body: nil, contentType: nil)
    }

    /// Sends signal `name` with `payload` to a run (a waiting step completes with it, or the run keeps it).
    public func signal(_ runID: String, name: String, payload: JSONValue = .object([:])) async throws {
        _ = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/signals/\(escape(name))",
            body: payload.canonicalData(),
            contentType: "application/json"
        )
    }

    /// Resumes a FAILED or CANCELLED run in place.
    public func retry(_ runID: String) async throws {
        _ = try await send(.POST, "/api/v1/executions/\(escape(runID))/retry", body: nil, contentType: nil)
    }

    /// Starts a new run like `runID` (with `input` instead of its input when given); returns the new run.
    public func rerun(_ runID: String, input: JSONValue? = nil) async throws -> RunStarted {
        let body: JSONValue = input.map { ["input": $0] } ?? .object([:])
        let (_, response) = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/rerun",
            body: body.canonicalData(),
            contentType: "application/json"
        )
        return try decode(RunStarted.self, response)
    }

    public func deadLetters(limit: Int? = nil, cursor: String? = nil) async throws -> Page<DeadLetterInfo> {
        let value = try await getJSON("/api/v1/dead-letters", query: ["limit": limit.map(String.init), "cursor": cursor])
        return Page(items: try decode([DeadLetterInfo].self, value["dead_letters"] ?? []), nextCursor: value["next_cursor"]?.stringValue)
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
        -> RunInfo
    {
        let deadline = ContinuousClock.now + timeout
        while true {
            let run = try await run(runID)
            if run.isFinished || ContinuousClock.now >= deadline { return run }
            try await Task.sleep(for: pollInterval)
        }
    }

    public func health() async throws -> Bool {
        (try await getJSON("/health"))["status"] == "ok"
    }

    // MARK: transport

    private func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    private func getJSON(_ path: String, query: [String: String?] = [:]) async throws -> JSONValue {
        let items = query.compactMap { key, value in value.map { "\(key)=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" }
        }
        let (_, body) = try await send(.GET, items.isEmpty ? path : path + "?" + items.sorted().joined(separator: "&"), body: nil, contentType: nil)
        return body
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data?, contentType: String?) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
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
            // Connection refused and friends come from NIO: say what it means for the user.
            throw WorkflowError(
                .unavailable,
                "cannot reach the uwf server at \(baseURL): is `uwf serve` running there? (--server or UWF_SERVER)"
            )
        }
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        let value = data.isEmpty ? JSONValue.null : ((try? JSONValue.parse(data)) ?? .string(String(decoding: data, as: UTF8.self)))
        guard (200..<300).contains(Int(response.status.code)) else {
            let code = value["code"]?.stringValue ?? "http_\(response.status.code)"
            let issues = (value["errors"]?.arrayValue ?? []).compactMap { e -> ValidationIssue? in
                guard let pointer = e["pointer"]?.stringValue, let message = e["message"]?.stringValue else { return nil }
                return ValidationIssue(pointerText: pointer, message: message)
            }
            throw WorkflowError(
                WorkflowError.Code(rawValue: code),
                value["detail"]?.stringValue ?? "HTTP \(response.status.code)",
                issues: issues
            )
        }
        return (Int(response.status.code), value)
    }

    private func decode<T: Decodable>(_ type: T.Type, _ value: JSONValue) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: value.canonicalData())
    }
}
