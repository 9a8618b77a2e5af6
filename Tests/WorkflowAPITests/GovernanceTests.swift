import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing
import WorkflowAPI
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// Keys with given roles, made through the API by the test admin; returns the secrets by name.
func makeKeys(_ client: any TestClientProtocol, _ roles: [String: [String]]) async throws -> [String: String] {
    var keys: [String: String] = [:]
    for (name, names) in roles { keys[name] = try await AuthorizationTests.createKey(client, roles: names, name: name).key }
    return keys
}

func bearer(_ key: String?) -> [String: String] { ["Authorization": "Bearer \(key ?? "")"] }

/// Runs raw SQL on the test's database, behind the server's back (to tamper with it).
func rawSQL(_ environment: APITestEnvironment, _ sql: String) async throws {
    if let path = environment.sqlitePath {
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)  // the server writes too
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try await queue.write { try $0.execute(sql: sql) }
        try queue.close()
    } else if let postgres = environment.postgres {
        _ = try await postgres.client.query(PostgresQuery(unsafeSQL: sql)).collect()
    }
}

@Suite struct GovernanceTests {
    static let waiting = """
        {"name": "hold", "version": "1.0.0", "definition": {"steps": [{"id": "w", "type": "wait_for_signal", "config": {"signal": "go"}}]}}
        """

    // MARK: audit log

    @Test(arguments: APIDriver.all) func theAuditLogChainsEveryActionAndVerifyNamesEachKindOfTampering(_ driver: APIDriver) async throws {
        try await withAPIEnvironment(driver) { client, environment in
            let keys = try await makeKeys(client, ["auditor": ["auditor"], "viewer": ["viewer"], "temp": ["operator"]])
            #expect(try await client.call(.post, "/api/v1/workflows", Self.waiting).status == .created)
            let (_, started, _) = try await client.call(
                .post,
                "/api/v1/execute",
                #"{"workflow_name": "hold"}"#,
                headers: ["X-Request-ID": "req-start-1"]
            )
            let runID = try #require(started["run_id"]?.stringValue)
            #expect(try await client.call(.post, "/api/v1/executions/\(runID)/cancel").status == .accepted)
            // Refusals change nothing and are audited too: a viewer starting a run, a bad key, a draft that is not there.
            #expect(
                try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "hold"}"#, headers: bearer(keys["viewer"])).status == .forbidden
            )
            #expect(try await client.call(.get, "/api/v1/executions", headers: bearer("uwf_not_a_real_key_0000000000000000")).status == .unauthorized)
            #expect(try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "nope"}"#).status == .notFound)
            let (_, keyList, _) = try await client.call(.get, "/api/v1/api-keys")
            let tempID = try #require(keyList["api_keys"]?.arrayValue?.first { $0["name"] == "temp" }?["id"]?.stringValue)
            #expect(try await client.call(.delete, "/api/v1/api-keys/\(tempID)").status == .noContent)

            let auditor = bearer(keys["auditor"])
            #expect(try await client.call(.get, "/api/v1/audit", headers: bearer(keys["viewer"])).status == .forbidden, "auditors only")
            let (status, page, _) = try await client.call(.get, "/api/v1/audit?order=chain&limit=500", headers: auditor)
            #expect(status == .ok)
            let entries = page["entries"]?.arrayValue ?? []
            let actions = entries.compactMap { $0["action"]?.stringValue }
            for expected in ["api_key.create", "definition.register", "run.start", "run.cancel", "request.refused", "auth.fail", "api_key.revoke"] {
                #expect(actions.contains(expected), "\(expected) in \(actions)")
            }
            let start = try #require(entries.first { $0["action"] == "run.start" })
            #expect(start["actor"] == "key:test-admin" && start["target"]?.stringValue == "run:\(runID)")
            #expect(start["request_id"] == "req-start-1" && start["source"]?.stringValue?.isEmpty == false && start["outcome"] == "success")
            let refused = entries.filter { $0["action"] == "request.refused" }
            #expect(refused.contains { $0["outcome"] == "denied" && $0["details"]?["status"] == 403 }, "the viewer's start: \(refused)")
            #expect(refused.contains { $0["outcome"] == "failed" && $0["details"]?["code"] == "workflow_not_found" }, "the missing workflow")
            #expect(entries.first { $0["action"] == "auth.fail" }?["outcome"] == "denied")
            #expect(entries.map { $0["seq"]?.numberValue ?? 0 } == (1...entries.count).map(Double.init), "numbered without gaps")
            // Reading the log is itself audited.
            let (_, newest, _) = try await client.call(.get, "/api/v1/audit?limit=1", headers: auditor)
            #expect(newest["entries"]?.arrayValue?.first?["action"] == "audit.read")

            func verify(_ query: String = "") async throws -> JSONValue {
                let (status, json, _) = try await client.call(.get, "/api/v1/audit/verify" + query, headers: auditor)
                #expect(status == .ok, "\(json)")
                return json
            }
            let intact = try await verify()
            #expect(intact["valid"] == true && intact["first_break"] == .null, "\(intact)")
            let checkpointSeq = try #require(intact["head_seq"]?.numberValue.map { Int($0) })
            let checkpointHash = try #require(intact["head_hash"]?.stringValue)

            // 1. An entry changed in place.
            try await rawSQL(environment, "UPDATE audit_log SET actor = 'key:someone-else' WHERE seq = 3")
            let changed = try await verify()
            #expect(
                changed["valid"] == false && changed["first_break"]?["seq"] == 3 && changed["first_break"]?["reason"] == "hash_mismatch",
                "\(changed)"
            )
            let original = entries[2]["actor"]?.stringValue ?? ""
            try await rawSQL(environment, "UPDATE audit_log SET actor = '\(original)' WHERE seq = 3")
            #expect(try await verify()["valid"] == true, "restored")

            // 2. An entry deleted from the middle.
            try await rawSQL(environment, "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq = 4")
            try await rawSQL(environment, "DELETE FROM audit_log WHERE seq = 4")
            let removed = try await verify()
            #expect(removed["first_break"]?["seq"] == 4 && removed["first_break"]?["reason"] == "entry_missing", "\(removed)")
            try await rawSQL(environment, "INSERT INTO audit_log SELECT * FROM audit_saved")
            #expect(try await verify()["valid"] == true, "restored")

            // 3. The newest entries deleted: the head kept beside the log shows it.
            try await rawSQL(environment, "DELETE FROM audit_log WHERE seq > \(checkpointSeq - 2)")
            let truncated = try await verify()
            #expect(truncated["valid"] == false && truncated["first_break"]?["reason"] == "truncated", "\(truncated)")
            // 4. The tail and the head rewritten together: only a checkpoint kept elsewhere shows it.
            try await rawSQL(environment, "DELETE FROM audit_log WHERE seq > \(checkpointSeq - 2)")
            try await rawSQL(
                environment,
                "UPDATE audit_heads SET seq = \(checkpointSeq - 2), hash = (SELECT hash FROM audit_log WHERE tenant_id = 'default' AND seq = \(checkpointSeq - 2)) WHERE tenant_id = 'default'"
            )
            #expect(try await verify()["valid"] == true, "a consistent truncation passes without a checkpoint")
            let caught = try await verify("?checkpoint_seq=\(checkpointSeq)&checkpoint_hash=\(checkpointHash)")
            #expect(caught["valid"] == false && caught["first_break"]?["reason"] == "truncated", "\(caught)")
        }
    }

    // MARK: definition lifecycle

    @Test(arguments: APIDriver.all) func underAnApprovalPolicyAVersionRunsOnlyOnceAnotherPersonApprovedIt(_ driver: APIDriver) async throws {
        try await withAPIEnvironment(driver) { client, _ in
            let keys = try await makeKeys(
                client,
                ["author": ["author", "approver"], "approver": ["approver"], "operator": ["operator"], "auditor": ["auditor"]]
            )
            let author = bearer(keys["author"])
            #expect(try await client.call(.put, "/api/v1/tenant/settings", #"{"activation_approvals": 1}"#, headers: author).status == .forbidden)
            let (set, settings, _) = try await client.call(.put, "/api/v1/tenant/settings", #"{"activation_approvals": 1}"#)
            #expect(set == .ok && settings["activation_approvals"] == 1)
            let (badStatus, bad, _) = try await client.call(
                .put,
                "/api/v1/tenant/settings",
                #"{"activation_approvals": 99, "egress_allow": ["not a host"]}"#
            )
            #expect(badStatus == .unprocessableContent && bad["errors"]?.arrayValue?.count == 2, "\(bad)")

            let (registered, v1, _) = try await client.call(.post, "/api/v1/workflows", sequenceWorkflow, headers: author)
            #expect(registered == .created && v1["status"] == "draft", "\(v1)")
            let start = #"{"workflow_name": "greet", "input": {"name": "Ada"}}"#
            let (draftStart, problem, _) = try await client.call(.post, "/api/v1/execute", start, headers: bearer(keys["operator"]))
            #expect(draftStart == .conflict && problem["code"] == "workflow_not_active", "\(problem)")
            #expect(
                try await client.call(.post, "/api/v1/workflows/greet/approve?version=1.0.0", "{}", headers: bearer(keys["approver"])).json["code"]
                    == "lifecycle_conflict"
            )
            let (_, submitted, _) = try await client.call(.post, "/api/v1/workflows/greet/submit?version=1.0.0", nil, headers: author)
            #expect(submitted["status"] == "pending_approval")
            // The author may hold the approver role: still not for their own version. Nothing changes.
            let (selfStatus, selfProblem, _) = try await client.call(.post, "/api/v1/workflows/greet/approve?version=1.0.0", "{}", headers: author)
            #expect(selfStatus == .forbidden && selfProblem["code"] == "self_approval")
            #expect(try await client.call(.get, "/api/v1/workflows/greet?version=1.0.0").json["status"] == "pending_approval")
            #expect(
                try await client.call(.post, "/api/v1/workflows/greet/approve?version=1.0.0", "{}", headers: bearer(keys["operator"])).status
                    == .forbidden
            )
            let (approved, active, _) = try await client.call(
                .post,
                "/api/v1/workflows/greet/approve?version=1.0.0",
                #"{"comment": "four eyes"}"#,
                headers: bearer(keys["approver"])
            )
            #expect(approved == .ok && active["status"] == "active", "\(active)")
            #expect(
                active["approvals"]?.arrayValue?.first?["comment"] == "four eyes"
                    && active["approvals"]?.arrayValue?.first?["actor"]?.stringValue?.hasPrefix("key:") == true
            )
            let (ran, run, _) = try await client.call(.post, "/api/v1/execute", start, headers: bearer(keys["operator"]))
            #expect(ran == .accepted, "\(run)")
            #expect(try await client.waitForRun(try #require(run["run_id"]?.stringValue))["status"] == "COMPLETED")

            // A new version is a draft again; the latest *active* version is what starts by name.
            let v2 = sequenceWorkflow.replacingOccurrences(of: "1.0.0", with: "1.1.0").replacingOccurrences(
                of: "hello ${input.name}",
                with: "hi ${input.name}"
            )
            .replacingOccurrences(of: #"{"id": "shout""#, with: #"{"id": "audit", "type": "noop"}, {"id": "shout""#)
            #expect(try await client.call(.post, "/api/v1/workflows", v2, headers: author).json["status"] == "draft")
            let (_, byName, _) = try await client.call(.post, "/api/v1/execute", start, headers: bearer(keys["operator"]))
            #expect(byName["workflow_version"] == "1.0.0", "the draft 1.1.0 is not chosen: \(byName)")
            let (diffStatus, diff, _) = try await client.call(.get, "/api/v1/workflows/greet/versions/1.0.0/diff/1.1.0")
            #expect(diffStatus == .ok, "\(diff)")
            let changes = diff["changes"]?.arrayValue ?? []
            #expect(
                changes.contains { $0["op"] == "replace" && $0["path"] == "/steps/hello/config/greeting" && $0["to"] == "hi ${input.name}" },
                "\(changes)"
            )
            #expect(changes.contains { $0["op"] == "add" && $0["path"] == "/steps/audit" }, "\(changes)")
            #expect(changes.count == 2, "moving nothing else: \(changes)")

            // Deprecated versions still run by version; retired ones do not.
            #expect(
                try await client.call(.post, "/api/v1/workflows/greet/deprecate?version=1.0.0", nil, headers: author).json["status"] == "deprecated"
            )
            #expect(try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "version": "1.0.0"}"#).status == .accepted)
            #expect(try await client.call(.post, "/api/v1/workflows/greet/retire?version=1.0.0", nil, headers: author).json["status"] == "retired")
            #expect(
                try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "greet", "version": "1.0.0"}"#).json["code"] == "workflow_retired"
            )

            let (_, log, _) = try await client.call(.get, "/api/v1/audit?order=chain&limit=500", headers: bearer(keys["auditor"]))
            let entries = log["entries"]?.arrayValue ?? []
            let actions = entries.compactMap { $0["action"]?.stringValue }
            for expected in [
                "tenant.settings", "definition.register", "definition.submit", "definition.approve", "definition.activated", "definition.deprecate",
                "definition.retire",
            ] {
                #expect(actions.contains(expected), "\(expected) in \(actions)")
            }
            #expect(entries.contains { $0["action"] == "request.refused" && $0["details"]?["code"] == "self_approval" && $0["outcome"] == "denied" })
        }
    }

    // MARK: bounds

    @Test func theGovernanceInputsAreBoundedAndSaySoWithPointers() async throws {
        try await withAPI { client in
            // The request id: a sensible one comes back as sent, anything else is replaced.
            let sent = try await client.call(.get, "/api/v1/workflows", headers: ["X-Request-ID": "trace-42.a_b"])
            #expect(sent.headers[HTTPField.Name("X-Request-ID")!] == "trace-42.a_b")
            for hostile in [String(repeating: "a", count: 129), "bad id", "quote\"d"] {
                let replaced = try await client.call(.get, "/api/v1/workflows", headers: ["X-Request-ID": hostile])
                let id = replaced.headers[HTTPField.Name("X-Request-ID")!] ?? ""
                #expect(!id.isEmpty && id != hostile && id.count <= 128, "\(hostile.prefix(20)) → \(id)")
            }
            #expect(try await client.call(.post, "/api/v1/workflows", GovernanceTests.waiting).status == .created)
            let long = String(repeating: "x", count: 2001)
            let comment = try await client.call(.post, "/api/v1/workflows/hold/deprecate?version=1.0.0", #"{"comment": "\#(long)"}"#)
            #expect(comment.status == .unprocessableContent && comment.json.canonicalString().contains("/comment"))
            #expect(try await client.call(.get, "/api/v1/workflows/hold?version=1.0.0").json["status"] == "active", "nothing changed")
            let atLimit = try await client.call(.post, "/api/v1/workflows/hold/deprecate?version=1.0.0", #"{"comment": "\#(long.dropLast())"}"#)
            #expect(atLimit.status == .ok)
            let value = String(repeating: "v", count: 65_537)
            let secret = try await client.call(.put, "/api/v1/secrets/BIG", #"{"value": "\#(value)"}"#)
            #expect(secret.status == .unprocessableContent && secret.json.canonicalString().contains("/value"))
            #expect(try await client.call(.put, "/api/v1/secrets/BIG", #"{"value": "\#(value.dropLast())"}"#).status == .created)
            let name = try await client.call(.put, "/api/v1/secrets/\(String(repeating: "N", count: 65))", #"{"value": "x"}"#)
            #expect(name.status == .unprocessableContent)
            let rules = (0...200).map { "\"10.0.\($0 % 250).0/24\"" }.joined(separator: ", ")
            let tooMany = try await client.call(.put, "/api/v1/tenant/settings", #"{"egress_deny": [\#(rules)]}"#)
            #expect(tooMany.status == .unprocessableContent && tooMany.json.canonicalString().contains("/egress_deny"))
            let limit = try await client.call(.get, "/api/v1/audit?limit=501")
            #expect(limit.status == .unprocessableContent)
        }
    }
}
