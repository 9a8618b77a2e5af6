import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// The API and the client share one set of wire types. These tests check that they agree: every response type is
/// fetched through the client from a real server, and the server's raw JSON, decoded into the wire type and encoded
/// again, is the same JSON (so no field the server sends is unknown to the type, and none is renamed).
@Suite struct WireRoundTripTests {
    /// Decodes `raw` as `T`, encodes it again, and expects the same JSON.
    func roundTrips<T: Codable>(_ type: T.Type, _ raw: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let decoded = try WireCoding.decode(T.self, from: raw.canonicalData())
        let again = try JSONValue.parse(try WireCoding.encode(decoded))
        #expect(again == raw, "\(T.self) does not carry the server's JSON as is", sourceLocation: sourceLocation)
    }

    @Test func everyResponseTypeRoundTripsThroughTheClient() async throws {
        try await withAPI { api in
            let port = try #require(api.port)
            let client = WorkflowClient(baseURL: "http://127.0.0.1:\(port)", apiKey: testAdminKey)
            #expect(try await client.health())

            // Definitions.
            let (child, created) = try await client.registerWorkflow(Data(sequenceWorkflow.utf8), yaml: false)
            #expect(created && child.status == .active && child.name == "greet")
            #expect(try await client.registerWorkflow(Data(sequenceWorkflow.utf8), yaml: false).created == false)
            let parentDocument = #"""
                {"name": "parent", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.names}", "steps": [
                    {"id": "call", "type": "sub_workflow", "config": {"workflow": "greet", "input": {"name": "${item}"}}}]}},
                  {"id": "wait", "type": "wait_for_signal", "depends_on": ["each"], "config": {"signal": "go"}}]}}
                """#
            _ = try await client.registerWorkflow(Data(parentDocument.utf8), yaml: false)
            let workflows = try await client.workflows(limit: 1)
            #expect(workflows.items.count == 1 && workflows.nextCursor != nil)
            #expect(try await client.workflow("greet", version: "1.0.0").id == child.id)
            try roundTrips(Page<Workflow>.self, try await api.call(.get, "/api/v1/workflows").json)
            try roundTrips(Workflow.self, try await api.call(.get, "/api/v1/workflows/greet").json)

            // A run through foreach, sub_workflow and a signal.
            let started = try await client.start(workflow: "parent", input: ["names": ["ann", "bob"]], priority: 5)
            #expect(started.status == .pending || started.status == .running)
            try await waitUntil { try await client.run(started.runId).step("wait")?.status == .waiting }
            let waiting = try await client.run(started.runId)
            #expect(waiting.step("wait")?.state == ["signal": "go"])
            #expect(waiting.summary.priority == 5)
            try roundTrips(RunDetail.self, try await api.call(.get, "/api/v1/executions/\(started.runId)").json)
            let children = try await client.children(started.runId)
            #expect(children.items.count == 2 && children.items.allSatisfy { $0.parentRunId == started.runId && $0.itemIndex != nil })
            try roundTrips(Page<RunSummary>.self, try await api.call(.get, "/api/v1/executions/\(started.runId)/children").json)
            let signalled = try await client.signal(started.runId, name: "go", payload: ["ok": true])
            #expect(signalled.signal == "go" && signalled.runId == started.runId)
            let done = try await client.wait(for: started.runId, timeout: .seconds(20))
            #expect(done.status == .completed)
            #expect(done.step("each")?.output?["results"]?.arrayValue?.count == 2)
            try roundTrips(RunDetail.self, try await api.call(.get, "/api/v1/executions/\(started.runId)").json)
            try roundTrips(RunOutputs.self, try await api.call(.get, "/api/workflows/data/\(started.runId)").json)
            let history = try await client.history(started.runId, limit: 3)
            #expect(history.items.map(\.seq) == [1, 2, 3] && history.nextCursor == "3")
            try roundTrips(Page<RunEvent>.self, try await api.call(.get, "/api/v1/executions/\(started.runId)/history").json)
            let runs = try await client.runs(status: .completed, workflow: "parent")
            #expect(runs.items.map(\.runId) == [started.runId])
            try roundTrips(Page<RunSummary>.self, try await api.call(.get, "/api/v1/executions").json)

            // Commands: cancel, retry, rerun, dead letters.
            let held = try await client.start(workflow: "parent", input: ["names": []])
            try await waitUntil { try await client.run(held.runId).step("wait")?.status == .waiting }
            let cancelled = try await client.cancel(held.runId)
            #expect(cancelled.status == .cancelled)
            let retried = try await client.retry(held.runId)
            #expect(retried.status == .running)
            let rerun = try await client.rerun(started.runId, input: ["names": ["cy"]])
            #expect(rerun.rerunOf == started.runId && rerun.runId != started.runId)
            _ = try await client.cancel(rerun.runId)
            let failing = #"{"name": "fails", "version": "1.0.0", "definition": {"steps": [{"id": "boom", "type": "fail"}]}}"#
            _ = try await client.registerWorkflow(Data(failing.utf8), yaml: false)
            let failed = try await client.start(workflow: "fails")
            _ = try await client.wait(for: failed.runId, timeout: .seconds(20))
            let letters = try await client.deadLetters()
            #expect(letters.items.map(\.runId) == [failed.runId] && letters.items.first?.failedStep == "boom")
            try roundTrips(Page<DeadLetter>.self, try await api.call(.get, "/api/v1/dead-letters").json)
            try await client.dismissDeadLetter(failed.runId)
            #expect(try await client.deadLetters().items.isEmpty)

            // Operations.
            let cluster = try await client.cluster()
            #expect(cluster.nodes.count == 1 && cluster.nodes.first?.alive == true)
            try roundTrips(ClusterStatus.self, try await api.call(.get, "/api/v1/cluster/nodes").json)

            // Errors come back as the server's problem, with its code and pointers.
            do {
                _ = try await client.start(workflow: "nope")
                Issue.record("a start of an unknown workflow must fail")
            } catch let error as WorkflowError {
                #expect(error.code == .workflowNotFound)
            }
            let invalid = try await api.call(.post, "/api/v1/execute", #"{"workflow_id": 7, "colour": "red"}"#)
            try roundTrips(Problem.self, invalid.json)
            let problem = try WireCoding.decode(Problem.self, from: invalid.json.canonicalData())
            #expect(problem.errors?.map(\.pointer) == ["/colour", "/workflow_id"])
        }
    }

    @Test func unknownQueryParametersAreRefusedNotIgnored() async throws {
        try await withAPI { api in
            let misspelt = try await api.call(.get, "/api/v1/executions?workflow=greet")
            #expect(misspelt.status == .unprocessableContent)
            #expect(misspelt.json["code"] == "invalid_request")
            #expect(misspelt.json["detail"]?.stringValue?.contains("'workflow'") == true)
            #expect(try await api.call(.get, "/api/v1/executions?workflow_id=greet").status == .notFound, "the right name is read")
            #expect(try await api.call(.get, "/api/v1/workflows?limit=5&cursor=x&name=greet").status == .ok)
            // Found by schemathesis: a parameter given twice, or a malformed one a route used to ignore, is refused.
            let twice = try await api.call(.get, "/api/v1/workflows?limit=5&limit=500")
            #expect(twice.status == .unprocessableContent && twice.json["detail"]?.stringValue?.contains("more than once") == true)
            #expect(try await api.call(.get, "/api/v1/audit?after=AAA").status == .unprocessableContent)
            let run = try await api.call(.post, "/api/v1/workflows", sequenceWorkflow)
            #expect(run.status == .created)
            let started = try await api.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "input": {"name": "x"}}"#)
            let id = try #require(started.json["run_id"]?.stringValue)
            #expect(try await api.call(.get, "/api/v1/executions/\(id)/history?limit=AAA").status == .unprocessableContent)
            #expect(try await api.call(.get, "/api/v1/executions/\(id)/history?after=-1").status == .unprocessableContent)
            #expect(try await api.call(.get, "/api/v1/executions/\(id)/history?limit=10000").status == .ok)
            #expect(try await api.call(.post, "/api/v1/secrets/rotate-master-key", "[null, null]").status == .unprocessableContent)
            #expect(try await api.call(.post, "/api/v1/secrets/rotate-master-key", "{}").status == .ok)
        }
    }
}
