import Foundation
import HummingbirdTesting
import Testing
import WorkflowPrimitive

/// Signals, retry, rerun, idempotent starts and dead letters over the real HTTP stack.
@Suite struct OperationsRoutesTests {
    static let kyc = """
        {"name": "kyc", "version": "1.0.0", "definition": {"steps": [
          {"id": "docs", "type": "wait_for_signal", "config": {"signal": "documents_received", "timeout_ms": 60000}},
          {"id": "route", "type": "switch", "depends_on": ["docs"],
           "config": {"cases": [{"when": "steps.docs.output.complete", "next": ["approve"]}], "default": ["reject"]}},
          {"id": "approve", "type": "echo", "depends_on": ["route"], "config": {"decision": "approved"}},
          {"id": "reject", "type": "fail", "depends_on": ["route"], "config": {"message": "documents incomplete"}}
        ]}}
        """

    @Test func signalsReachWaitingRuns() async throws {
        try await withAPI { client in
            try await client.call(.post, "/api/v1/workflows", Self.kyc)
            let runID = try #require(try await client.call(.post, "/api/v1/workflows/kyc/execute", "{}").json["run_id"]?.stringValue)
            let sent = try await client.call(.post, "/api/v1/executions/\(runID)/signals/documents_received", #"{"complete": true}"#)
            #expect(sent.status == .accepted)
            let run = try await client.waitForRun(runID)
            #expect(run["status"] == "COMPLETED")
            let steps = try #require(run["steps"]?.arrayValue)
            #expect(steps.first { $0["id"] == "docs" }?["output"] == ["complete": true])
            #expect(steps.first { $0["id"] == "reject" }?["status"] == "SKIPPED")

            let finished = try await client.call(.post, "/api/v1/executions/\(runID)/signals/documents_received", "{}")
            #expect(finished.status == .conflict && finished.json["code"] == "run_finished")
            #expect(finished.headers[.contentType] == "application/problem+json")
            let unknown = try await client.call(.post, "/api/v1/executions/01a1fe45-0000-7000-8000-000000000000/signals/x", "{}")
            #expect(unknown.status == .notFound && unknown.json["code"] == "run_not_found")
            let badName = try await client.call(.post, "/api/v1/executions/\(runID)/signals/has%20space", "{}")
            #expect(badName.status == .unprocessableContent)
            let badBody = try await client.call(.post, "/api/v1/executions/\(runID)/signals/x", "{nope")
            #expect(badBody.status == .badRequest && badBody.json["code"] == "malformed_body")
        }
    }

    @Test func failedRunsAreDeadLettersUntilRetriedOrDismissed() async throws {
        try await withAPI { client in
            try await client.call(.post, "/api/v1/workflows", Self.kyc)
            var failed: [String] = []
            for _ in 0..<2 {
                let runID = try #require(try await client.call(.post, "/api/v1/workflows/kyc/execute", "{}").json["run_id"]?.stringValue)
                try await client.call(.post, "/api/v1/executions/\(runID)/signals/documents_received", #"{"complete": false}"#)
                #expect(try await client.waitForRun(runID)["status"] == "FAILED")
                failed.append(runID)
            }
            let letters = try await client.call(.get, "/api/v1/dead-letters")
            let entries = try #require(letters.json["dead_letters"]?.arrayValue)
            #expect(Set(entries.compactMap { $0["run_id"]?.stringValue }) == Set(failed))
            #expect(
                entries.allSatisfy { $0["failed_step"] == "reject" && $0["failed_at"]?.stringValue != nil && $0["workflow_id"]?.stringValue != nil }
            )
            #expect(entries.first?["error"]?["code"] == "step_failed")
            #expect(letters.json["next_cursor"] == .null)
            let page = try await client.call(.get, "/api/v1/dead-letters?limit=1")
            #expect(page.json["dead_letters"]?.arrayValue?.count == 1 && page.json["next_cursor"]?.stringValue != nil)

            // Dismissed: off the list; dismissing again is a 404.
            #expect(try await client.call(.delete, "/api/v1/dead-letters/\(failed[0])").status == .noContent)
            #expect(try await client.call(.delete, "/api/v1/dead-letters/\(failed[0])").status == .notFound)

            // Retried: resumes in place from the failed step (the signal's output is kept) and leaves the list.
            let retried = try await client.call(.post, "/api/v1/executions/\(failed[1])/retry")
            #expect(retried.status == .accepted)
            let run = try await client.waitForRun(failed[1])
            #expect(run["status"] == "FAILED", "the same input fails the same way")
            let history = try #require(try await client.call(.get, "/api/v1/executions/\(failed[1])/history").json["events"]?.arrayValue)
            #expect(history.contains { $0["type"] == "run_resumed" })
            #expect(history.filter { $0["type"] == "step_succeeded" && $0["step_id"] == "docs" }.count == 1)

            let notRetryable = try await client.call(.post, "/api/v1/executions/\(failed[0])/rerun", #"{"input": 5}"#)
            #expect(notRetryable.status == .unprocessableContent && notRetryable.json["errors"]?.arrayValue?.first?["pointer"] == "/input")
            let rerun = try await client.call(.post, "/api/v1/executions/\(failed[0])/rerun", #"{"input": {"again": true}}"#)
            #expect(rerun.status == .accepted)
            let newID = try #require(rerun.json["run_id"]?.stringValue)
            #expect(newID != failed[0] && rerun.json["rerun_of"]?.stringValue == failed[0])
            #expect(try await client.call(.get, "/api/v1/executions/\(newID)").json["input"] == ["again": true])

            let running = try await client.call(.post, "/api/v1/executions/\(newID)/retry")
            #expect(running.status == .conflict && running.json["code"] == "run_not_retryable")
        }
    }

    @Test func idempotencyKeyOnExecute() async throws {
        try await withAPI { client in
            try await client.call(.post, "/api/v1/workflows", sequenceWorkflow)
            let body = #"{"workflow_name": "greet", "input": {"name": "Ada"}}"#
            let first = try await client.call(.post, "/api/v1/execute", body, headers: ["Idempotency-Key": "order-42"])
            #expect(first.status == .accepted)
            let again = try await client.call(.post, "/api/v1/execute", body, headers: ["Idempotency-Key": "order-42"])
            #expect(again.status == .ok)
            #expect(again.json["run_id"] == first.json["run_id"])
            let other = try await client.call(
                .post,
                "/api/v1/execute",
                #"{"workflow_name": "greet", "input": {"name": "Bob"}}"#,
                headers: ["Idempotency-Key": "order-42"]
            )
            #expect(other.status == .unprocessableContent && other.json["code"] == "idempotency_key_reused")
            let byPath = try await client.call(
                .post,
                "/api/v1/workflows/greet/execute",
                #"{"input": {"name": "Ada"}}"#,
                headers: ["Idempotency-Key": "order-43"]
            )
            #expect(byPath.status == .accepted && byPath.json["run_id"] != first.json["run_id"])
            let runs = try #require(try await client.call(.get, "/api/v1/executions").json["executions"]?.arrayValue)
            #expect(runs.count == 2)
        }
    }
}
