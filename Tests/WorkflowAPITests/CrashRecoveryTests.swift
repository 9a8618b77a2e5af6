import Foundation
import Hummingbird
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// `kill -9` of the real binary in the middle of a `foreach`, of a compensation and of a wait for a signal, on both
/// storage drivers: after a restart every run finishes, and nothing is recorded twice.
@Suite(.serialized) struct CrashRecoveryTests {
    static var drivers: [String] { PostgresTestDatabase.enabled ? ["sqlite", "postgres"] : ["sqlite"] }

    /// Starts `uwf serve` on a fresh SQLite directory or PostgreSQL schema; `start` may be called again after a kill.
    func withDeployment(_ driver: String, _ body: (_ start: () async throws -> UWFProcess) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // Short leases so that on PostgreSQL the restarted node takes over the killed one's work quickly.
        let common = ["--lease-seconds", "3", "--heartbeat-seconds", "1", "--poll-interval-ms", "200"]
        if driver == "postgres" {
            let configuration = try PostgresTestDatabase.configuration()
            let url = try #require(PostgresTestDatabase.url) + "&schema=\(configuration.schema)"
            try await withPostgresStore(configuration: configuration) { _ in
                try await body { try await UWFProcess.serve(dataDirectory: directory, extra: ["--database", url] + common) }
            }
        } else {
            try await body { try await UWFProcess.serve(dataDirectory: directory, extra: common) }
        }
    }

    static func slowRoutes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
        router.post("/slow") { request, _ in
            let ms = Int(request.uri.queryParameters.get("ms") ?? "50") ?? 50
            try await Task.sleep(for: .milliseconds(ms))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        router.post("/refuse") { _, _ in
            try await Task.sleep(for: .milliseconds(100))
            return Response(status: .unprocessableContent, body: .init(byteBuffer: ByteBuffer(string: #"{"reason":"account closed"}"#)))
        }
    }

    func allChildren(_ client: WorkflowClient, _ runID: String) async throws -> [RunSummary] {
        var out: [RunSummary] = []
        var cursor: String?
        repeat {
            let page = try await client.children(runID, limit: 500, cursor: cursor)
            out += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return out
    }

    @Test(arguments: drivers) func killNineInTheMiddleOfAForeach(_ driver: String) async throws {
        try await LocalHTTPServer.with(Self.slowRoutes) { remote in
            try await withDeployment(driver) { start in
                var server = try await start()
                let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
                _ = try await client.registerWorkflow(
                    Data(
                        """
                        {"name": "payouts", "version": "1.0.0", "definition": {"steps": [
                          {"id": "pay", "type": "foreach", "config": {"items": "${input.items}", "max_concurrency": 16, "steps": [
                             {"id": "send", "type": "http_request", "config": {"url": "\(remote.baseURL)/slow?ms=40", "method": "POST", "body": {"i": "${index}"}}},
                             {"id": "receipt", "type": "transform", "depends_on": ["send"], "config": {"output": "${item * 10}"}}
                          ]}}
                        ]}}
                        """.utf8
                    ),
                    yaml: false
                )
                let count = 200
                let run = try await client.start(workflow: "payouts", input: ["items": .array((0..<count).map { .number(Double($0)) })])
                try await waitUntil { remote.requests(path: "/slow").count >= 60 }
                server.kill9()
                let before = remote.requests(path: "/slow").count
                #expect(before < count, "the kill must land mid-foreach")

                server = try await start()
                defer { _ = server.terminate() }
                let restarted = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
                let done = try await restarted.wait(for: run.runId, timeout: .seconds(120), pollInterval: .milliseconds(50))
                #expect(done.status == .completed)
                let results = done.steps.first { $0.id == "pay" }?.output?["results"]?.arrayValue ?? []
                #expect(results == (0..<count).map { .number(Double($0 * 10)) })

                let items = try await allChildren(restarted, run.runId)
                #expect(items.count == count)
                for item in items {
                    #expect(item.status == .completed)
                    let history = try await restarted.history(item.runId).items
                    for step in ["send", "receipt"] {
                        #expect(
                            history.filter { $0.type == "step_succeeded" && $0.stepId == step }.count == 1,
                            "item \(item.itemIndex ?? -1) \(step)"
                        )
                    }
                }
                // A re-sent payment carries the key of its first attempt, so the remote can deduplicate it.
                let keysPerItem = Dictionary(grouping: remote.requests(path: "/slow"), by: \.body)
                #expect(keysPerItem.count == count)
                for (_, calls) in keysPerItem { #expect(Set(calls.map { $0.headers["idempotency-key"] }).count == 1) }
                let parentHistory = try await restarted.history(run.runId).items
                #expect(parentHistory.filter { $0.type == "step_succeeded" && $0.stepId == "pay" }.count == 1)
            }
        }
    }

    @Test(arguments: drivers) func killNineDuringCompensation(_ driver: String) async throws {
        try await LocalHTTPServer.with(Self.slowRoutes) { remote in
            try await withDeployment(driver) { start in
                var server = try await start()
                let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
                _ = try await client.registerWorkflow(
                    Data(
                        """
                        {"name": "transfer", "version": "1.0.0", "definition": {"steps": [
                          {"id": "debit", "type": "http_request", "config": {"url": "\(remote.baseURL)/slow?ms=10", "method": "POST", "body": {"debit": "${run.id}"}},
                           "compensate": {"type": "http_request", "config": {"url": "\(remote.baseURL)/slow?ms=400", "method": "POST", "body": {"refund": "${run.id}"}}}},
                          {"id": "credit", "type": "http_request", "depends_on": ["debit"], "config": {"url": "\(remote.baseURL)/refuse", "method": "POST"}}
                        ]}}
                        """.utf8
                    ),
                    yaml: false
                )
                var runIDs: [String] = []
                for i in 0..<20 { runIDs.append(try await client.start(workflow: "transfer", input: ["i": .number(Double(i))]).runId) }
                // Kill while refunds are in flight.
                try await waitUntil { remote.requests.filter { $0.body.contains("refund") }.count >= 5 }
                server.kill9()

                server = try await start()
                defer { _ = server.terminate() }
                let restarted = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
                for id in runIDs {
                    let run = try await restarted.wait(for: id, timeout: .seconds(60), pollInterval: .milliseconds(50))
                    #expect(run.status == .failed)
                    #expect(run.compensated == true, "run \(id)")
                    #expect(run.steps.first { $0.id == "debit.compensate" }?.status == .success)
                    let history = try await restarted.history(id).items
                    #expect(history.filter { $0.type == "step_succeeded" && $0.stepId == "debit.compensate" }.count == 1)
                    #expect(history.filter { $0.type == "run_failed" }.count == 1)
                }
                let refunds = Dictionary(grouping: remote.requests.filter { $0.body.contains("refund") }, by: \.body)
                #expect(refunds.count == runIDs.count)
                for (_, calls) in refunds { #expect(Set(calls.map { $0.headers["idempotency-key"] }).count == 1) }
            }
        }
    }

    @Test(arguments: drivers) func killNineWhileRunsWaitForSignals(_ driver: String) async throws {
        try await withDeployment(driver) { start in
            var server = try await start()
            let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            _ = try await client.registerWorkflow(
                Data(
                    """
                    {"name": "kyc", "version": "1.0.0", "definition": {"steps": [
                      {"id": "docs", "type": "wait_for_signal", "config": {"signal": "documents_received", "timeout_ms": 600000}},
                      {"id": "done", "type": "echo", "depends_on": ["docs"], "config": {"files": "${steps.docs.output.files}"}}
                    ]}}
                    """.utf8
                ),
                yaml: false
            )
            var runIDs: [String] = []
            for _ in 0..<20 { runIDs.append(try await client.start(workflow: "kyc").runId) }
            try await waitUntil {
                var waiting = 0
                for id in runIDs where try await client.run(id).steps.first?.status == .waiting { waiting += 1 }
                return waiting == runIDs.count
            }
            // Half get their signal before the crash: a 202 means it is durable.
            for id in runIDs.prefix(10) { try await client.signal(id, name: "documents_received", payload: ["files": [.string(id)]]) }
            server.kill9()

            server = try await start()
            defer { _ = server.terminate() }
            let restarted = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            for id in runIDs.suffix(10) { try await restarted.signal(id, name: "documents_received", payload: ["files": [.string(id)]]) }
            for id in runIDs {
                let run = try await restarted.wait(for: id, timeout: .seconds(60), pollInterval: .milliseconds(50))
                #expect(run.status == .completed)
                #expect(run.output == ["done": ["files": [.string(id)]]])
                let history = try await restarted.history(id).items
                #expect(history.filter { $0.type == "step_succeeded" && $0.stepId == "docs" }.count == 1)
            }
        }
    }

    @Test(arguments: drivers) func killNineWhileRunsWaitForApprovals(_ driver: String) async throws {
        try await withDeployment(driver) { start in
            var server = try await start()
            let admin = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            _ = try await admin.registerWorkflow(
                Data(
                    """
                    {"name": "release", "version": "1.0.0", "definition": {"steps": [
                      {"id": "four_eyes", "type": "approval", "config": {"approvers_required": 2, "timeout_ms": 600000}},
                      {"id": "done", "type": "echo", "depends_on": ["four_eyes"], "config": {"by": "${steps.four_eyes.output.approvals}"}}
                    ]}}
                    """.utf8
                ),
                yaml: false
            )
            let a = try await admin.createAPIKey(CreateAPIKeyRequest(name: "a", roles: ["approver"])).key
            let b = try await admin.createAPIKey(CreateAPIKeyRequest(name: "b", roles: ["approver"])).key
            var runIDs: [String] = []
            for _ in 0..<10 { runIDs.append(try await admin.start(workflow: "release").runId) }
            try await waitUntil {
                var waiting = 0
                for id in runIDs where try await admin.run(id).steps.first?.status == .waiting { waiting += 1 }
                return waiting == runIDs.count
            }
            // Every run has one approval before the crash (a 200 means it is durable); half have both.
            let first = WorkflowClient(baseURL: server.baseURL, apiKey: a)
            for id in runIDs { _ = try await first.decide(runID: id, stepID: "four_eyes", approve: true) }
            for id in runIDs.prefix(5) {
                _ = try await WorkflowClient(baseURL: server.baseURL, apiKey: b).decide(runID: id, stepID: "four_eyes", approve: true)
            }
            server.kill9()

            server = try await start()
            defer { _ = server.terminate() }
            let restartedAdmin = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            let second = WorkflowClient(baseURL: server.baseURL, apiKey: b)
            for id in runIDs.suffix(5) {
                // The first approval survived: the same person cannot approve again, another one completes it.
                await #expect(throws: WorkflowError.self) {
                    _ = try await WorkflowClient(baseURL: server.baseURL, apiKey: a).decide(runID: id, stepID: "four_eyes", approve: true)
                }
                _ = try await second.decide(runID: id, stepID: "four_eyes", approve: true)
            }
            for id in runIDs {
                let run = try await restartedAdmin.wait(for: id, timeout: .seconds(60), pollInterval: .milliseconds(50))
                #expect(run.status == .completed)
                #expect(run.steps.first { $0.id == "four_eyes" }?.output?["approvals"]?.arrayValue?.count == 2)
                let history = try await restartedAdmin.history(id).items
                #expect(history.filter { $0.type == "step_succeeded" && $0.stepId == "four_eyes" }.count == 1)
                #expect(history.filter { $0.type == "approval_decided" }.count == 2)
            }
            let verified = try await restartedAdmin.verifyAudit()
            #expect(verified.valid, "\(verified)")
        }
    }
}
