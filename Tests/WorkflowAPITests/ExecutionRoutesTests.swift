import Foundation
import HummingbirdTesting
import Testing
import WorkflowPrimitive

@Suite struct ExecutionRoutesTests {
    @Test func executeFollowAndReadARun() async throws {
        try await withAPI { client in
            let id = try #require(try await client.call(.post, "/api/v1/workflows", sequenceWorkflow).json["id"]?.stringValue)
            let started = try await client.call(.post, "/api/v1/workflows/\(id)/execute", #"{"input": {"name": "Ada"}}"#)
            #expect(started.status == .accepted)
            let runID = try #require(started.json["run_id"]?.stringValue)
            // PENDING, or RUNNING when the node claimed the first steps in the same commit.
            #expect(["PENDING", "RUNNING"].contains(started.json["status"]?.stringValue ?? ""))
            #expect(started.headers[.location] == "/api/v1/executions/\(runID)")

            let run = try await client.waitForRun(runID)
            #expect(run["status"] == "COMPLETED")
            #expect(run["run_id"]?.stringValue == runID)
            #expect(run["workflow_id"]?.stringValue == id)
            #expect(run["input"] == ["name": "Ada"])
            #expect(run["output"] == ["message": "HELLO ADA"])
            #expect(run["error"] == .null)
            for key in ["created_at", "started_at", "completed_at"] { #expect(run[key]?.stringValue != nil, "\(key)") }
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.map { $0["id"] } == ["hello", "shout"])
            #expect(steps[0]["status"] == "SUCCESS" && steps[0]["attempts"] == 1 && steps[0]["output"] == ["greeting": "hello Ada"])
            #expect(steps[1]["started_at"]?.stringValue != nil && steps[1]["completed_at"]?.stringValue != nil && steps[1]["error"] == .null)

            let history = try await client.call(.get, "/api/v1/executions/\(runID)/history")
            let events = try #require(history.json["events"]?.arrayValue)
            #expect(events.first?["seq"] == 1 && events.first?["type"] == "run_created")
            #expect(events.last?["type"] == "run_completed")
            #expect(events.contains { $0["type"] == "step_succeeded" && $0["step_id"] == "shout" && $0["at"]?.stringValue != nil })
            #expect(events.map { $0["seq"]?.numberValue ?? 0 } == (1...events.count).map(Double.init))

            let status = try await client.call(.get, "/api/workflows/status/\(runID)")
            #expect(status.json["status"] == "COMPLETED")
            let data = try await client.call(.get, "/api/workflows/data/\(runID)")
            #expect(
                data.json == [
                    "run_id": .string(runID), "status": "COMPLETED", "input": ["name": "Ada"],
                    "output": ["message": "HELLO ADA"], "steps": ["hello": ["greeting": "hello Ada"], "shout": "HELLO ADA"],
                ]
            )
        }
    }

    @Test func executeByNameAndVersionDefaultsToTheHighest() async throws {
        try await withAPI { client in
            for v in ["1.2.0", "1.10.0", "1.9.0"] {
                try await client.call(.post, "/api/v1/workflows", sequenceWorkflow.replacingOccurrences(of: "1.0.0", with: v))
            }
            let latest = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "input_data": {"name": "x"}}"#)
            #expect(latest.status == .accepted && latest.json["workflow_version"] == "1.10.0")
            let pinned = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "version": "1.2.0"}"#)
            #expect(pinned.json["workflow_version"] == "1.2.0")
            let legacy = try await client.call(.post, "/api/workflows/run", #"{"workflow_name": "greet", "input_data": {"name": "y"}}"#)
            #expect(legacy.status == .accepted)
            let legacyByID = try await client.call(.post, "/api/workflows/run/greet", #"{"input": {"name": "z"}}"#)
            #expect(legacyByID.status == .accepted)
            let byID = try await client.call(.post, "/api/v1/execute", #"{"workflow_id": "\#(latest.json["workflow_id"]!.stringValue!)"}"#)
            #expect(byID.status == .accepted && byID.json["workflow_version"] == "1.10.0")
            let run = try await client.waitForRun(try #require(legacyByID.json["run_id"]?.stringValue))
            #expect(run["output"] == ["message": "HELLO Z"])
        }
    }

    @Test func badExecuteRequests() async throws {
        try await withAPI { client in
            try await client.call(.post, "/api/v1/workflows", sequenceWorkflow)
            let notObject = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "input_data": [1]}"#)
            #expect(notObject.status == .unprocessableContent)
            #expect(notObject.json["errors"] == [["pointer": "/input_data", "message": "must be an object, got array"]])
            let unknownField = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "inputs": {}}"#)
            #expect(unknownField.json["errors"]?.arrayValue?.first?["pointer"] == "/inputs")
            let noTarget = try await client.call(.post, "/api/v1/execute", #"{"input": {}}"#)
            #expect(noTarget.status == .unprocessableContent && noTarget.json["errors"]?.arrayValue?.first?["pointer"] == "/workflow_id")
            let unknown = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "ghost"}"#)
            #expect(unknown.status == .notFound && unknown.json["code"] == "workflow_not_found")
            let badVersion = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "version": "9.9.9"}"#)
            #expect(badVersion.status == .notFound)
            let malformed = try await client.call(.post, "/api/v1/execute", "{nope")
            #expect(malformed.status == .badRequest)
            #expect(try await client.call(.get, "/api/v1/executions").json["executions"] == [])
        }
    }

    @Test func listsRunsWithFiltersAndCursor() async throws {
        try await withAPI { client in
            let greet = try #require(try await client.call(.post, "/api/v1/workflows", sequenceWorkflow).json["id"]?.stringValue)
            try await client.call(
                .post,
                "/api/v1/workflows",
                """
                {"name": "nap", "version": "1.0.0", "definition": {"steps": [{"id": "z", "type": "delay", "config": {"duration_ms": 60000}}]}}
                """
            )
            var greetRuns: [String] = []
            for i in 0..<3 {
                greetRuns.append(
                    try #require(
                        try await client.call(.post, "/api/v1/workflows/greet/execute", #"{"input": {"name": "\#(i)"}}"#).json["run_id"]?.stringValue
                    )
                )
            }
            let napRun = try #require(try await client.call(.post, "/api/v1/workflows/nap/execute").json["run_id"]?.stringValue)
            for id in greetRuns { _ = try await client.waitForRun(id) }

            let page1 = try await client.call(.get, "/api/v1/executions?limit=2")
            #expect(page1.json["executions"]?.arrayValue?.map { $0["run_id"]?.stringValue } == [napRun, greetRuns[2]])
            let cursor = try #require(page1.json["next_cursor"]?.stringValue)
            let page2 = try await client.call(.get, "/api/v1/executions?limit=2&cursor=\(cursor)")
            #expect(page2.json["executions"]?.arrayValue?.map { $0["run_id"]?.stringValue } == [greetRuns[1], greetRuns[0]])
            #expect(page2.json["next_cursor"] == .some(.null))

            let completed = try await client.call(.get, "/api/v1/executions?status=completed")
            #expect(completed.json["executions"]?.arrayValue?.count == 3)
            let byWorkflow = try await client.call(.get, "/api/v1/executions?workflow_id=\(greet)")
            #expect(byWorkflow.json["executions"]?.arrayValue?.count == 3)
            let workflowHistory = try await client.call(.get, "/api/v1/workflows/nap/history")
            #expect(workflowHistory.json["executions"]?.arrayValue?.map { $0["run_id"]?.stringValue } == [napRun])
            #expect(try await client.call(.get, "/api/v1/executions?status=DONE").status == .unprocessableContent)
            #expect(try await client.call(.get, "/api/v1/executions/nope").json["code"] == "run_not_found")
            #expect(try await client.call(.get, "/api/v1/executions/nope/history").status == .notFound)
        }
    }

    @Test func cancelARunThenCancellingAgainConflicts() async throws {
        try await withAPI { client in
            try await client.call(
                .post,
                "/api/v1/workflows",
                """
                {"name": "nap", "version": "1.0.0", "definition": {"steps": [
                  {"id": "z", "type": "delay", "config": {"duration_ms": 60000}},
                  {"id": "after", "type": "noop", "depends_on": ["z"]}]}}
                """
            )
            let runID = try #require(try await client.call(.post, "/api/v1/workflows/nap/execute").json["run_id"]?.stringValue)
            let cancelled = try await client.call(.post, "/api/v1/executions/\(runID)/cancel")
            #expect(cancelled.status == .accepted && cancelled.json["status"] == "CANCELLED")
            let run = try await client.call(.get, "/api/v1/executions/\(runID)").json
            #expect(run["status"] == "CANCELLED")
            #expect(run["steps"]?.arrayValue?.first?["status"] == "CANCELLED")
            let again = try await client.call(.post, "/api/workflows/cancel/\(runID)")
            #expect(again.status == .conflict && again.json["code"] == "run_not_cancellable")
            #expect(try await client.call(.post, "/api/v1/executions/nope/cancel").status == .notFound)
        }
    }
}
