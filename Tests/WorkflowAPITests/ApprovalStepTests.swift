import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// `approval` steps over the real HTTP stack: four eyes, distinct people, roles, rejection, timeout, the inbox.
@Suite struct ApprovalStepTests {
    static let release = """
        {"name": "wire-release", "version": "1.0.0", "definition": {"steps": [
          {"id": "four_eyes", "type": "approval",
           "config": {"approvers_required": 2, "allowed_roles": ["approver"], "message": "release ${input.amount} EUR"}},
          {"id": "release", "type": "transform", "depends_on": ["four_eyes"], "config": {"output": "${steps.four_eyes.output.decision}"}}
        ], "output": {"released": "${steps.release.output}"}}}
        """

    static func stepStatus(_ client: any TestClientProtocol, _ runID: String, _ step: String) async throws -> String? {
        let (_, run, _) = try await client.call(.get, "/api/v1/executions/\(runID)")
        return run["steps"]?.arrayValue?.first { $0["id"]?.stringValue == step }?["status"]?.stringValue
    }

    @Test(arguments: APIDriver.all) func twoDistinctApproversWhoDidNotStartTheRunReleaseIt(_ driver: APIDriver) async throws {
        try await withAPI(driver) { client in
            let keys = try await makeKeys(
                client,
                ["initiator": ["operator", "approver"], "a": ["approver"], "b": ["approver"], "viewer": ["viewer"], "auditor": ["auditor"]]
            )
            #expect(try await client.call(.post, "/api/v1/workflows", Self.release).status == .created)
            let start = #"{"workflow_name": "wire-release", "input": {"amount": 250000}}"#
            let (_, started, _) = try await client.call(.post, "/api/v1/execute", start, headers: bearer(keys["initiator"]))
            let runID = try #require(started["run_id"]?.stringValue)
            try await waitUntil { try await Self.stepStatus(client, runID, "four_eyes") == "WAITING" }
            let decide = "/api/v1/executions/\(runID)/approvals/four_eyes"

            // Refusals change nothing.
            let (own, ownProblem, _) = try await client.call(.post, decide, #"{"decision": "approve"}"#, headers: bearer(keys["initiator"]))
            #expect(own == .forbidden && ownProblem["code"] == "self_approval", "the initiator may not approve: \(ownProblem)")
            #expect(try await client.call(.post, decide, #"{"decision": "approve"}"#, headers: bearer(keys["viewer"])).status == .forbidden)
            let (bad, badProblem, _) = try await client.call(.post, decide, #"{"decision": "maybe", "extra": 1}"#, headers: bearer(keys["a"]))
            #expect(bad == .unprocessableContent && badProblem["errors"]?.arrayValue?.count == 2, "\(badProblem)")

            // The inbox shows what each person may decide.
            func inbox(_ key: String?) async throws -> [String] {
                let (_, page, _) = try await client.call(.get, "/api/v1/approvals?status=pending", headers: bearer(key))
                return page["approvals"]?.arrayValue?.compactMap { $0["run_id"]?.stringValue } ?? []
            }
            #expect(try await inbox(keys["a"]) == [runID])
            #expect(try await inbox(keys["initiator"]).isEmpty, "not one's own run")
            let (_, listed, _) = try await client.call(.get, "/api/v1/approvals", headers: bearer(keys["b"]))
            let item = try #require(listed["approvals"]?.arrayValue?.first)
            #expect(
                item["message"] == "release 250000 EUR" && item["approvers_required"] == 2
                    && item["initiator"]?.stringValue?.hasPrefix("key:") == true
            )

            let (first, afterFirst, _) = try await client.call(
                .post,
                decide,
                #"{"decision": "approve", "comment": "checked the beneficiary"}"#,
                headers: bearer(keys["a"])
            )
            #expect(first == .ok, "\(afterFirst)")
            #expect(try await Self.stepStatus(client, runID, "four_eyes") == "WAITING", "one of two")
            let (again, againProblem, _) = try await client.call(.post, decide, #"{"decision": "approve"}"#, headers: bearer(keys["a"]))
            #expect(again == .conflict && againProblem["code"] == "already_decided", "the same person counts once")
            #expect(try await inbox(keys["a"]).isEmpty, "decided already")
            #expect(try await client.call(.post, decide, #"{"decision": "approve"}"#, headers: bearer(keys["b"])).status == .ok)
            let done = try await client.waitForRun(runID)
            #expect(done["status"] == "COMPLETED" && done["output"]?["released"] == "approved", "\(done)")
            let (_, history, _) = try await client.call(.get, "/api/v1/executions/\(runID)/history")
            let events = history["events"]?.arrayValue ?? []
            #expect(events.contains { $0["type"] == "approval_requested" })
            let decisions = events.filter { $0["type"] == "approval_decided" }
            #expect(decisions.count == 2 && Set(decisions.compactMap { $0["data"]?["actor"]?.stringValue }).count == 2, "\(decisions)")
            #expect(decisions.first?["data"]?["comment"] == "checked the beneficiary")
            let (late, lateProblem, _) = try await client.call(.post, decide, #"{"decision": "reject"}"#, headers: bearer(keys["viewer"]))
            #expect(late == .forbidden, "\(lateProblem)")
            #expect(
                try await client.call(.post, decide, #"{"decision": "reject"}"#, headers: bearer(keys["b"])).json["code"] == "approval_not_pending"
            )

            // One rejection fails the step, and with it the run.
            let (_, second, _) = try await client.call(.post, "/api/v1/execute", start, headers: bearer(keys["initiator"]))
            let rejected = try #require(second["run_id"]?.stringValue)
            try await waitUntil { try await Self.stepStatus(client, rejected, "four_eyes") == "WAITING" }
            let (no, _, _) = try await client.call(
                .post,
                "/api/v1/executions/\(rejected)/approvals/four_eyes",
                #"{"decision": "reject", "comment": "wrong IBAN"}"#,
                headers: bearer(keys["b"])
            )
            #expect(no == .ok)
            let failed = try await client.waitForRun(rejected)
            #expect(failed["status"] == "FAILED", "\(failed)")
            let step = failed["steps"]?.arrayValue?.first { $0["id"] == "four_eyes" }
            #expect(
                step?["error"]?["code"] == "approval_rejected" && step?["error"]?["details"]?["comment"] == "wrong IBAN",
                "\(String(describing: step))"
            )

            // Every decision and refusal is in the audit log.
            let (_, log, _) = try await client.call(.get, "/api/v1/audit?order=chain&limit=500", headers: bearer(keys["auditor"]))
            let entries = log["entries"]?.arrayValue ?? []
            #expect(entries.filter { $0["action"] == "approval.approve" }.count == 2)
            #expect(entries.filter { $0["action"] == "approval.reject" }.count == 1)
            #expect(entries.contains { $0["action"] == "request.refused" && $0["details"]?["code"] == "self_approval" })
        }
    }

    @Test func aTimeoutEndsTheWaitAsTheStepSays() async throws {
        try await withAPI { client in
            for (name, config) in [
                ("strict", #"{"timeout_ms": 200}"#), ("lenient", #"{"timeout_ms": 200, "on_timeout": "continue", "exclude_author": true}"#),
            ] {
                let definition = """
                    {"name": "\(name)", "version": "1.0.0", "definition": {"steps": [{"id": "wait", "type": "approval", "config": \(config)}]}}
                    """
                #expect(try await client.call(.post, "/api/v1/workflows", definition).status == .created)
            }
            let (_, strict, _) = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "strict"}"#)
            let failed = try await client.waitForRun(try #require(strict["run_id"]?.stringValue))
            #expect(failed["status"] == "FAILED" && failed["steps"]?.arrayValue?.first?["error"]?["code"] == "approval_timed_out", "\(failed)")
            let (_, lenient, _) = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "lenient"}"#)
            let passed = try await client.waitForRun(try #require(lenient["run_id"]?.stringValue))
            #expect(passed["status"] == "COMPLETED" && passed["steps"]?.arrayValue?.first?["output"]?["decision"] == "timed_out", "\(passed)")
        }
    }

    @Test func approvalConfigIsCheckedAtRegistration() async throws {
        try await withAPI { client in
            let definition = """
                {"name": "bad", "version": "1.0.0", "definition": {"steps": [
                  {"id": "a", "type": "approval", "config": {"approvers_required": 0, "allowed_roles": [], "on_timeout": "shrug", "color": "red"}}
                ]}}
                """
            let (status, problem, _) = try await client.call(.post, "/api/v1/workflows", definition)
            #expect(status == .unprocessableContent)
            let pointers = Set(problem["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } ?? [])
            for field in ["approvers_required", "allowed_roles", "on_timeout", "color"] {
                #expect(pointers.contains("/definition/steps/0/config/\(field)"), "\(field) in \(pointers)")
            }
        }
    }
}
