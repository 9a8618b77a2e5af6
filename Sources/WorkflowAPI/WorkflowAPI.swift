import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WorkflowEngine
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// The REST API: routes, request parsing and responses. The contract is described in docs/api.md.
public struct WorkflowAPI: Sendable {
    let store: any WorkflowStore
    let registry: WorkflowRegistry
    let engine: WorkflowEngine
    let configuration: APIConfiguration

    public init(store: any WorkflowStore, registry: WorkflowRegistry, engine: WorkflowEngine, configuration: APIConfiguration) {
        self.store = store
        self.registry = registry
        self.engine = engine
        self.configuration = configuration
    }

    /// A router with every route and the problem+json error middleware.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ProblemMiddleware())
        addRoutes(to: router)
        return router
    }

    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/health") { _, _ in json(["status": "ok"]) }
        // Ready means this node can do its work now: not shutting down, its engine reaching the database, and the
        // database answering this probe within two seconds.
        router.get("/health/ready") { _, _ in
            if let reason = engine.notReadyReason { throw WorkflowError(.unavailable, reason) }
            do {
                try await store.ping()
                return json(["status": "ready"])
            } catch {
                throw WorkflowError(.unavailable, "the database does not answer")
            }
        }

        let v1 = router.group("/api/v1")
        v1.post("/workflows") { request, _ in try await registerWorkflow(request) }
        v1.get("/workflows") { request, _ in try await listWorkflows(request) }
        v1.get("/workflows/:id") { _, context in
            json(Representation.definition(try await registry.resolve(try context.parameters.require("id")).record))
        }
        v1.post("/workflows/:id/retire") { request, context in
            try await setStatus(request, reference: try context.parameters.require("id"), status: .retired)
        }
        v1.post("/workflows/:id/activate") { request, context in
            try await setStatus(request, reference: try context.parameters.require("id"), status: .active)
        }
        v1.delete("/workflows/:id") { request, context in
            let definition = try await versionReference(request, try context.parameters.require("id"))
            try await registry.delete(id: definition.record.id)
            return Response(status: .noContent)
        }
        v1.get("/workflows/:id/history") { request, context in
            let ids = try await definitionIDs(matching: try context.parameters.require("id"))
            return try await listRuns(request, definitionIDs: ids, key: "executions")
        }
        v1.post("/workflows/:id/execute") { request, context in
            try await execute(request, reference: try context.parameters.require("id"))
        }
        v1.post("/execute") { request, _ in try await execute(request, reference: nil) }
        v1.get("/executions") { request, _ in try await listRuns(request, definitionIDs: nil, key: "executions") }
        v1.get("/executions/:run_id") { _, context in try await runDetail(try context.parameters.require("run_id")) }
        v1.get("/executions/:run_id/history") { request, context in
            try await history(request, runID: try context.parameters.require("run_id"))
        }
        v1.post("/executions/:run_id/cancel") { _, context in try await cancel(try context.parameters.require("run_id")) }
        v1.post("/executions/:run_id/signals/:name") { request, context in
            try await signal(request, runID: try context.parameters.require("run_id"), name: try context.parameters.require("name"))
        }
        v1.post("/executions/:run_id/retry") { _, context in try await retry(try context.parameters.require("run_id")) }
        v1.post("/executions/:run_id/rerun") { request, context in try await rerun(request, runID: try context.parameters.require("run_id")) }
        v1.get("/executions/:run_id/children") { request, context in
            try await listRuns(request, definitionIDs: nil, key: "executions", parentRunID: try context.parameters.require("run_id"))
        }
        v1.get("/dead-letters") { request, _ in try await deadLetters(request) }
        v1.delete("/dead-letters/:run_id") { _, context in try await dismissDeadLetter(try context.parameters.require("run_id")) }
        v1.get("/cluster/nodes") { _, _ in try await clusterNodes() }

        // The original system's paths, kept as aliases so its clients keep working.
        let legacy = router.group("/api/workflows")
        legacy.post("/run") { request, _ in try await execute(request, reference: nil) }
        legacy.post("/run/:id") { request, context in try await execute(request, reference: try context.parameters.require("id")) }
        legacy.get("/status/:run_id") { _, context in try await runDetail(try context.parameters.require("run_id")) }
        legacy.get("/data/:run_id") { _, context in try await runData(try context.parameters.require("run_id")) }
        legacy.get("/list") { request, _ in try await listWorkflows(request) }
        legacy.post("/cancel/:run_id") { _, context in try await cancel(try context.parameters.require("run_id")) }
        legacy.get("/definition/:id") { _, context in
            json(Representation.definition(try await registry.resolve(try context.parameters.require("id")).record))
        }
    }

    // MARK: workflows

    private func registerWorkflow(_ request: Request) async throws -> Response {
        let data = try await body(request)
        let format = try mediaType(request, yamlAllowed: true)
        let document: JSONValue
        do {
            document = try WorkflowDocument.decode(
                data,
                format: format,
                maxDepth: configuration.limits.maxDefinitionDepth + 2,
                limits: configuration.limits
            )
        } catch {
            throw WorkflowError(.malformedBody, error.message)
        }
        switch try await registry.register(document: document, now: Date()) {
        case .created(let definition):
            return json(
                Representation.definition(definition.record),
                status: .created,
                location: "/api/v1/workflows/\(definition.record.id)"
            )
        case .existing(let definition):
            return json(Representation.definition(definition.record), status: .ok)
        }
    }

    private func listWorkflows(_ request: Request) async throws -> Response {
        let limit = try pageSize(request)
        let records = try await registry.list(
            DefinitionListParams(
                name: request.uri.queryParameters.get("name"),
                limit: limit + 1,
                after: request.uri.queryParameters.get("cursor")
            )
        )
        let page = Array(records.prefix(limit))
        return json([
            "workflows": .array(page.map(Representation.definition)),
            "next_cursor": records.count > limit ? .string(page.last!.id) : .null,
        ])
    }

    /// One version: `{id}` is a version id, or a name with `?version=`.
    private func versionReference(_ request: Request, _ reference: String) async throws -> CompiledDefinition {
        let version = request.uri.queryParameters.get("version")
        if version == nil, !RecordID.looksLikeID(reference) {
            throw WorkflowError(.invalidRequest, "name a version: use the version's id, or ?version= with the workflow's name")
        }
        return try await registry.resolve(reference, version: version)
    }

    private func setStatus(_ request: Request, reference: String, status: DefinitionStatus) async throws -> Response {
        let definition = try await versionReference(request, reference)
        return json(Representation.definition(try await registry.setStatus(id: definition.record.id, status: status)))
    }

    /// The definition ids a `{id}` path segment stands for: one id, or every version of a name.
    private func definitionIDs(matching reference: String) async throws -> [String] {
        if RecordID.looksLikeID(reference), let definition = try await registry.definition(id: reference) {
            return [definition.record.id]
        }
        let versions = try await store.definitionVersions(tenantID: defaultTenantID, name: reference)
        guard !versions.isEmpty else { throw WorkflowError(.workflowNotFound, "no workflow \(reference) is registered") }
        return versions.map(\.id)
    }

    // MARK: runs

    private static let executeFields: Set<String> = ["workflow_id", "workflow_name", "version", "input", "input_data", "priority"]

    private func execute(_ request: Request, reference: String?) async throws -> Response {
        let fields = try await jsonObject(request, allowEmpty: reference != nil)
        var issues: [ValidationIssue] = []
        for key in fields.keys.sorted() where !Self.executeFields.contains(key) {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key)'"))
        }
        func string(_ key: String) -> String? {
            guard let value = fields[key], !value.isNull else { return nil }
            if let s = value.stringValue { return s }
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "must be a string"))
            return nil
        }
        let version = string("version")
        var target = reference
        if target == nil {
            target = string("workflow_id") ?? string("workflow_name")
            if target == nil, issues.isEmpty {
                issues.append(
                    ValidationIssue(pointer: JSONPointer.root.appending("workflow_id"), message: "workflow_id or workflow_name is required")
                )
            }
        }
        if fields["input"] != nil, fields["input_data"] != nil {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending("input_data"), message: "give either input or input_data, not both"))
        }
        let input = fields["input"] ?? fields["input_data"] ?? .object([:])
        if !input.isNull, input.objectValue == nil {
            let key = fields["input"] != nil ? "input" : "input_data"
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "must be an object, got \(input.typeName)"))
        }
        var priority = 0
        if let p = fields["priority"] {
            if let n = p.numberValue, n.rounded() == n, abs(n) <= 1000 {
                priority = Int(n)
            } else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("priority"), message: "must be an integer between -1000 and 1000"))
            }
        }
        let key = try idempotencyKey(request)
        guard issues.isEmpty, let target else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }

        if input.boundedSize(limit: configuration.limits.maxInputBytes, maxDepth: configuration.limits.maxOutputDepth) == nil {
            throw WorkflowError(
                .inputTooLarge,
                "the run input is larger than \(configuration.limits.maxInputBytes) bytes or nests deeper than \(configuration.limits.maxOutputDepth) levels"
            )
        }
        let definition = try await registry.resolveStartable(target, version: version)
        let run: RunRecord
        var created = true
        if let key {
            // The same key and the same request answer with the same run; the request is what the body and path say.
            let request: JSONValue = [
                "target": .string(target), "version": version.map(JSONValue.string) ?? .null, "input": input,
                "priority": .number(Double(priority)),
            ]
            let hash = SHA256.hash(data: request.canonicalData()).map { String(format: "%02x", $0) }.joined()
            (run, created) = try await engine.start(definition: definition, input: input, idempotencyKey: key, requestHash: hash, priority: priority)
        } else {
            run = try await engine.start(definition: definition, input: input, priority: priority)
        }
        return accepted(run, created: created)
    }

    private func accepted(_ run: RunRecord, created: Bool = true) -> Response {
        json(
            [
                "run_id": .string(run.id), "status": .string(run.status.rawValue), "workflow_id": .string(run.definitionID),
                "workflow_name": .string(run.workflowName), "workflow_version": .string(run.workflowVersion),
                "created_at": Representation.time(run.createdAt),
            ],
            status: created ? .accepted : .ok,
            location: "/api/v1/executions/\(run.id)"
        )
    }

    private static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    private func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[Self.idempotencyKeyHeader] else { return nil }
        guard (1...255).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.value >= 0x21 && $0.value <= 0x7e }) else {
            throw WorkflowError(.invalidRequest, "Idempotency-Key must be 1-255 visible ASCII characters")
        }
        return key
    }

    private func signal(_ request: Request, runID: String, name: String) async throws -> Response {
        guard SignalName.isValid(name) else {
            throw WorkflowError(.invalidRequest, "a signal name is 1-128 characters of letters, digits, '.', '_' or '-'")
        }
        let data = try await body(request)
        var payload: JSONValue = .object([:])
        if !data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            _ = try mediaType(request, yamlAllowed: false)
            do {
                payload = try WorkflowDocument.decode(data, format: .json)
            } catch {
                throw WorkflowError(.malformedBody, error.message)
            }
        }
        let run = try await engine.signal(runID: runID, name: name, payload: payload)
        return json(["run_id": .string(run.id), "signal": .string(name), "status": .string(run.status.rawValue)], status: .accepted)
    }

    private func retry(_ runID: String) async throws -> Response {
        let run = try await engine.retry(runID: runID)
        return json(["run_id": .string(run.id), "status": .string(run.status.rawValue)], status: .accepted, location: "/api/v1/executions/\(run.id)")
    }

    private func rerun(_ request: Request, runID: String) async throws -> Response {
        let fields = try await jsonObject(request, allowEmpty: true)
        for key in fields.keys.sorted() where key != "input" {
            throw WorkflowError(
                .invalidRequest,
                "the request is invalid",
                issues: [
                    ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key)'; expected input")
                ]
            )
        }
        if let input = fields["input"], input.objectValue == nil {
            throw WorkflowError(
                .invalidRequest,
                "the request is invalid",
                issues: [
                    ValidationIssue(pointer: JSONPointer.root.appending("input"), message: "must be an object, got \(input.typeName)")
                ]
            )
        }
        let run = try await engine.rerun(runID: runID, input: fields["input"])
        var body = [String: JSONValue]()
        body["run_id"] = .string(run.id)
        body["rerun_of"] = .string(runID)
        body["status"] = .string(run.status.rawValue)
        return json(.object(body), status: .accepted, location: "/api/v1/executions/\(run.id)")
    }

    private func deadLetters(_ request: Request) async throws -> Response {
        let limit = try pageSize(request)
        let runs = try await store.deadLetterList(tenantID: defaultTenantID, before: request.uri.queryParameters.get("cursor"), limit: limit + 1)
        let page = Array(runs.prefix(limit))
        return json([
            "dead_letters": .array(
                page.map { run in
                    [
                        "run_id": .string(run.id), "workflow_id": .string(run.definitionID), "workflow_name": .string(run.workflowName),
                        "workflow_version": .string(run.workflowVersion), "failed_step": run.error?["step_id"] ?? .null,
                        "error": run.error ?? .null, "failed_at": Representation.time(run.completedAt),
                        "compensated": run.compensated.map(JSONValue.bool) ?? .null,
                    ]
                }
            ),
            "next_cursor": runs.count > limit ? .string(page.last!.id) : .null,
        ])
    }

    private func dismissDeadLetter(_ runID: String) async throws -> Response {
        guard try await store.runGet(tenantID: defaultTenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        guard try await store.deadLetterDismiss(tenantID: defaultTenantID, runID: runID) else {
            throw WorkflowError(.notFound, "run \(runID) is not a dead letter")
        }
        return Response(status: .noContent)
    }

    private func listRuns(
        _ request: Request,
        definitionIDs: [String]?,
        key: String,
        parentRunID: String? = nil
    ) async throws
        -> Response
    {
        let query = request.uri.queryParameters
        let limit = try pageSize(request)
        var status: RunStatus?
        if let text = query.get("status") {
            guard let s = RunStatus(rawValue: text.uppercased()) else {
                throw WorkflowError(.invalidRequest, "status must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = s
        }
        var ids = definitionIDs
        if ids == nil, let workflow = query.get("workflow_id") {
            ids = try await self.definitionIDs(matching: workflow)
        }
        let runs = try await store.runList(
            RunListParams(
                status: status,
                definitionIDs: ids,
                parentRunID: parentRunID ?? query.get("parent_run_id"),
                limit: limit + 1,
                before: query.get("cursor")
            )
        )
        let page = Array(runs.prefix(limit))
        return json([
            key: .array(page.map { .object(Representation.runSummary($0)) }),
            "next_cursor": runs.count > limit ? .string(page.last!.id) : .null,
        ])
    }

    private func loadRun(_ runID: String) async throws -> (RunRecord, [StepRunRecord]) {
        guard let run = try await store.runGet(tenantID: defaultTenantID, id: runID) else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        var steps = try await store.stepList(runID: runID)
        if let plan = try? await registry.definition(id: run.definitionID)?.plan.body(at: run.bodyPath) {
            // DAG steps in declaration order, then compensations in the order they ran, then on_failure.
            func rank(_ s: StepRunRecord) -> (Int, Date) {
                if let i = plan.stepIndex[s.stepID] { return (i, .distantPast) }
                return (s.stepID == "on_failure" ? Int.max : Int.max - 1, s.startedAt ?? s.updatedAt)
            }
            steps.sort { rank($0) < rank($1) }
        }
        return (run, steps)
    }

    private func runDetail(_ runID: String) async throws -> Response {
        let (run, steps) = try await loadRun(runID)
        return json(Representation.run(run, steps: steps))
    }

    private func runData(_ runID: String) async throws -> Response {
        let (run, steps) = try await loadRun(runID)
        var outputs: [String: JSONValue] = [:]
        for step in steps { outputs[step.stepID] = step.output ?? .null }
        return json([
            "run_id": .string(run.id), "status": .string(run.status.rawValue), "input": run.input, "output": run.output ?? .null,
            "steps": .object(outputs),
        ])
    }

    private func history(_ request: Request, runID: String) async throws -> Response {
        guard try await store.runGet(tenantID: defaultTenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        let after = request.uri.queryParameters.get("after").flatMap { Int($0) } ?? 0
        let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) }.map { min(max($0, 1), 10_000) } ?? 1000
        let events = try await store.eventList(runID: runID, afterSeq: after, limit: limit + 1)
        let page = Array(events.prefix(limit))
        return json([
            "events": .array(page.map(Representation.event)),
            "next_cursor": events.count > limit ? .string(String(page.last!.seq)) : .null,
        ])
    }

    private func cancel(_ runID: String) async throws -> Response {
        let run = try await engine.cancel(runID: runID)
        return json(["run_id": .string(run.id), "status": .string(run.status.rawValue)], status: .accepted)
    }

    // MARK: cluster

    private func clusterNodes() async throws -> Response {
        let now = Date()
        let leader = try await store.leaderGet(name: LeaderElector.sweeper).flatMap { $0.expiresAt > now ? $0.owner : nil }
        let nodes = try await store.nodeList()
        return json([
            "nodes": .array(
                nodes.map { node in
                    [
                        "id": .string(node.id), "host": .string(node.host), "started_at": Representation.time(node.startedAt),
                        "last_heartbeat_at": Representation.time(node.heartbeatAt), "held_tasks": .number(Double(node.heldTasks)),
                        "alive": .bool(now.timeIntervalSince(node.heartbeatAt) < configuration.nodeTimeout.seconds),
                        "leader": .bool(node.id == leader),
                    ]
                }
            ),
            "leader": leader.map(JSONValue.string) ?? .null,
        ])
    }

    // MARK: helpers

    private func pageSize(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return configuration.defaultPageSize }
        guard let n = Int(text), (1...configuration.maxPageSize).contains(n) else {
            throw WorkflowError(.invalidRequest, "limit must be an integer from 1 to \(configuration.maxPageSize)")
        }
        return n
    }

    private func body(_ request: Request) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw WorkflowError(.payloadTooLarge, "the request body is larger than \(configuration.maxBodyBytes) bytes")
        }
        let request = request
        let limit = configuration.maxBodyBytes
        let timeout = configuration.requestTimeout
        do {
            // A client that trickles its body must not hold a connection and a task for ever.
            return try await withThrowingTaskGroup(of: Data?.self) { group in
                group.addTask {
                    var request = request
                    return Data(try await request.collectBody(upTo: limit).readableBytesView)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let data = try await group.next() ?? nil else {
                    throw WorkflowError(.requestTimeout, "the request body did not arrive within \(timeout)")
                }
                return data
            }
        } catch is NIOTooManyBytesError {
            throw WorkflowError(.payloadTooLarge, "the request body is larger than \(configuration.maxBodyBytes) bytes")
        }
    }

    /// The format a body is in, from its Content-Type: JSON (`application/json` or any `+json` type), and for
    /// definitions YAML too. Anything else is refused rather than guessed at (a form or an XML body is not JSON).
    private func mediaType(_ request: Request, yamlAllowed: Bool) throws -> WorkflowDocument.Format {
        let header = request.headers[.contentType] ?? ""
        let type = header.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json")) { return .json }
        if yamlAllowed, ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"].contains(type) { return .yaml }
        let accepted = yamlAllowed ? "application/json or application/yaml" : "application/json"
        throw WorkflowError(
            .unsupportedMediaType,
            header.isEmpty
                ? "the request body needs a Content-Type: \(accepted) (curl: -H 'Content-Type: application/json')"
                : "Content-Type '\(header.prefix(100))' is not accepted here; send \(accepted)"
        )
    }

    private func jsonObject(_ request: Request, allowEmpty: Bool) async throws -> [String: JSONValue] {
        let data = try await body(request)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            if allowEmpty { return [:] }
            throw WorkflowError(.malformedBody, "the request needs a JSON body")
        }
        _ = try mediaType(request, yamlAllowed: false)
        let value: JSONValue
        do {
            value = try WorkflowDocument.decode(data, format: .json)
        } catch {
            throw WorkflowError(.malformedBody, error.message)
        }
        guard case .object(let fields) = value else {
            throw WorkflowError(
                .invalidRequest,
                "the body must be a JSON object",
                issues: [
                    ValidationIssue(pointer: .root, message: "must be an object, got \(value.typeName)")
                ]
            )
        }
        return fields
    }
}

func json(_ value: JSONValue, status: HTTPResponse.Status = .ok, location: String? = nil) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let location { headers[.location] = location }
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: value.canonicalData())))
}
