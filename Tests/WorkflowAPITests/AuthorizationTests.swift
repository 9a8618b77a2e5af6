import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import WorkflowAPI
import WorkflowEngine
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// Who may call what: every route against every role, tenants that cannot see each other, and the answers to
/// missing, bad and revoked credentials. Runs against the real router over a real socket.
@Suite struct AuthorizationTests {
    /// Every route, with the permission it needs (written out here, not read from the code under test).
    /// Ids that exist nowhere are used: authorization comes before any lookup, so a denied role gets 403 and an
    /// allowed one gets past it (404, 422 or a success).
    static let routes: [(HTTPRequest.Method, String, String)] = [
        (.get, "/api/v1/workflows", "read"), (.post, "/api/v1/workflows", "write"), (.get, "/api/v1/workflows/nope", "read"),
        (.post, "/api/v1/workflows/nope/retire", "write"), (.post, "/api/v1/workflows/nope/activate", "write"),
        (.delete, "/api/v1/workflows/nope", "delete"), (.get, "/api/v1/workflows/nope/history", "read"),
        (.post, "/api/v1/workflows/nope/execute", "execute"), (.post, "/api/v1/execute", "execute"),
        (.get, "/api/v1/executions", "read"), (.get, "/api/v1/executions/nope", "read"), (.get, "/api/v1/executions/nope/history", "read"),
        (.post, "/api/v1/executions/nope/cancel", "execute"), (.post, "/api/v1/executions/nope/signals/go", "execute"),
        (.post, "/api/v1/executions/nope/retry", "execute"), (.post, "/api/v1/executions/nope/rerun", "execute"),
        (.get, "/api/v1/executions/nope/children", "read"), (.get, "/api/v1/dead-letters", "read"),
        (.delete, "/api/v1/dead-letters/nope", "execute"), (.get, "/api/v1/cluster/nodes", "admin"),
        (.post, "/api/v1/api-keys", "admin"), (.get, "/api/v1/api-keys", "admin"), (.delete, "/api/v1/api-keys/nope", "admin"),
        (.post, "/api/v1/tenants", "platform"), (.get, "/api/v1/tenants", "platform"),
        (.post, "/api/workflows/run", "execute"), (.post, "/api/workflows/run/nope", "execute"), (.get, "/api/workflows/status/nope", "read"),
        (.get, "/api/workflows/data/nope", "read"), (.get, "/api/workflows/list", "read"), (.post, "/api/workflows/cancel/nope", "execute"),
        (.get, "/api/workflows/definition/nope", "read"),
        (.post, "/api/v1/workflows/nope/submit", "write"), (.post, "/api/v1/workflows/nope/deprecate", "write"),
        (.post, "/api/v1/workflows/nope/approve", "decide"), (.post, "/api/v1/workflows/nope/reject", "decide"),
        (.get, "/api/v1/workflows/nope/versions/1.0.0/diff/2.0.0", "read"),
        (.post, "/api/v1/executions/nope/approvals/step", "decide"), (.get, "/api/v1/approvals", "decide"),
        (.get, "/api/v1/audit", "audit"), (.get, "/api/v1/audit/verify", "audit"),
        (.get, "/api/v1/tenant/settings", "read"), (.put, "/api/v1/tenant/settings", "admin"),
        (.put, "/api/v1/secrets/NOPE", "admin"), (.get, "/api/v1/secrets", "admin"), (.delete, "/api/v1/secrets/NOPE", "admin"),
        (.post, "/api/v1/secrets/rotate-master-key", "platform"),
        (.post, "/api/v1/schedules", "execute"), (.get, "/api/v1/schedules", "read"), (.post, "/api/v1/schedules/preview", "read"),
        (.get, "/api/v1/schedules/nope", "read"), (.put, "/api/v1/schedules/nope", "execute"), (.delete, "/api/v1/schedules/nope", "execute"),
        (.post, "/api/v1/schedules/nope/pause", "execute"), (.post, "/api/v1/schedules/nope/resume", "execute"),
        (.post, "/api/v1/schedules/nope/trigger", "execute"), (.post, "/api/v1/schedules/nope/backfill", "execute"),
        (.get, "/api/v1/schedules/nope/preview", "read"), (.get, "/api/v1/schedules/nope/runs", "read"),
        (.post, "/api/v1/webhooks", "admin"), (.get, "/api/v1/webhooks", "admin"), (.get, "/api/v1/webhooks/nope", "admin"),
        (.put, "/api/v1/webhooks/nope", "admin"), (.delete, "/api/v1/webhooks/nope", "admin"),
        (.post, "/api/v1/webhooks/nope/rotate-secret", "admin"), (.get, "/api/v1/webhooks/nope/deliveries", "admin"),
        (.get, "/api/v1/webhook-deliveries", "admin"), (.get, "/api/v1/webhook-deliveries/nope", "admin"),
        (.post, "/api/v1/webhook-deliveries/redeliver", "admin"), (.get, "/api/v1/events", "read"),
        (.get, "/api/v1/executions/nope/events", "read"), (.put, "/api/v1/templates/nope", "write"),
        (.get, "/api/v1/templates", "read"), (.get, "/api/v1/templates/nope", "read"), (.post, "/api/v1/runs/purge", "admin"),
        (.get, "/metrics", "metrics"),
    ]

    /// What each role may do, as the issue and docs/security.md state it.
    static let allowed: [String: Set<String>] = [
        "viewer": ["read"], "operator": ["read", "execute"], "author": ["read", "write", "delete"], "approver": ["read", "decide"],
        "auditor": ["read", "audit"], "monitor": ["metrics"],
        "admin": ["read", "write", "delete", "execute", "admin", "platform", "decide", "audit", "metrics"],
    ]

    /// Creates a key with `roles` (in `tenant`) as the test admin; returns its secret and id.
    static func createKey(
        _ api: any TestClientProtocol,
        roles: [String],
        tenant: String? = nil,
        name: String = "test",
        as admin: String = testAdminKey
    ) async throws
        -> (key: String, id: String)
    {
        let tenantField = tenant.map { #", "tenant_id": "\#($0)""# } ?? ""
        let roleList = roles.map { "\"\($0)\"" }.joined(separator: ", ")
        let created = try await api.call(
            .post,
            "/api/v1/api-keys",
            #"{"name": "\#(name)", "roles": [\#(roleList)]\#(tenantField)}"#,
            headers: ["Authorization": "Bearer \(admin)"]
        )
        #expect(created.status == .created, "\(created.json)")
        return (try #require(created.json["key"]?.stringValue), try #require(created.json["id"]?.stringValue))
    }

    @Test func everyRouteAgainstEveryRole() async throws {
        try await withAPI { api in
            for (role, permissions) in Self.allowed.sorted(by: { $0.key < $1.key }) {
                let (key, _) = try await Self.createKey(api, roles: [role])
                for (method, path, needs) in Self.routes {
                    let body = method == .post || method == .put ? "{}" : nil
                    let answer = try await api.call(method, path, body, headers: ["Authorization": "Bearer \(key)"])
                    if permissions.contains(needs) {
                        #expect(answer.status != .forbidden && answer.status != .unauthorized, "\(role) may \(method) \(path): \(answer.json)")
                    } else {
                        #expect(answer.status == .forbidden, "\(role) may not \(method) \(path): got \(answer.status)")
                        #expect(answer.json["code"] == "forbidden")
                    }
                }
            }
            // The health probes need no credentials.
            #expect(try await api.call(.get, "/health", headers: ["Authorization": ""]).status == .ok)
            #expect(try await api.call(.get, "/health/ready", headers: ["Authorization": ""]).status == .ok)
            // Nor does the API's description (it holds no data).
            #expect(try await api.call(.get, "/openapi.json", headers: ["Authorization": ""]).status == .ok)
            #expect(try await api.call(.get, "/api-docs", headers: ["Authorization": ""]).status == .ok)
        }
    }

    @Test(arguments: APIDriver.all) func missingBadAndRevokedCredentialsAre401AndSayNothingAboutKeys(_ driver: APIDriver) async throws {
        try await withAPI(driver) { api in
            let none = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": ""])
            #expect(none.status == .unauthorized && none.json["code"] == "unauthenticated")
            #expect(none.headers[.wwwAuthenticate]?.hasPrefix("Bearer") == true)
            let unknown = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer uwf_unknown-key-0123456789abcdefghij"])
            let junk = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer not-a-key"])
            let viaHeader = try await api.call(.get, "/api/v1/executions", headers: ["X-API-Key": "uwf_unknown-key-0123456789abcdefghij"])
            for answer in [unknown, junk, viaHeader] {
                #expect(answer.status == .unauthorized && answer.json["code"] == "unauthenticated")
                #expect(answer.json["detail"] == unknown.json["detail"], "the same answer whatever was wrong")
            }
            // X-API-Key works like the bearer header.
            #expect(try await api.call(.get, "/api/v1/executions", headers: ["X-API-Key": testAdminKey]).status == .ok)

            let (key, id) = try await Self.createKey(api, roles: ["viewer"])
            #expect(try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer \(key)"]).status == .ok)
            #expect(try await api.call(.delete, "/api/v1/api-keys/\(id)").status == .noContent)
            let revoked = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer \(key)"])
            #expect(revoked.status == .unauthorized, "a revoked key stops working at once on the node that revoked it")
            #expect(revoked.json["detail"] == unknown.json["detail"])
            #expect(try await api.call(.delete, "/api/v1/api-keys/\(id)").status == .notFound, "revoked once")
            let listed = try await api.call(.get, "/api/v1/api-keys")
            let entry = listed.json["api_keys"]?.arrayValue?.first { $0["id"]?.stringValue == id }
            #expect(entry?["revoked_at"]?.stringValue != nil)
            #expect(entry?["key"] == nil && !listed.json.canonicalString().contains(key), "a listing never carries a secret")
        }
    }

    @Test func keyRequestsAreValidated() async throws {
        try await withAPI { api in
            let bad = try await api.call(.post, "/api/v1/api-keys", #"{"name": "", "roles": ["wizard"], "colour": 1, "expires_at": "yesterday"}"#)
            #expect(bad.status == .unprocessableContent)
            #expect(bad.json["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } == ["/colour", "/name", "/roles", "/expires_at"])
            let past = try await api.call(.post, "/api/v1/api-keys", #"{"name": "x", "roles": ["viewer"], "expires_at": "2001-01-01T00:00:00Z"}"#)
            #expect(past.status == .unprocessableContent)
            let noTenant = try await api.call(.post, "/api/v1/api-keys", #"{"name": "x", "roles": ["viewer"], "tenant_id": "ghost"}"#)
            #expect(noTenant.status == .notFound && noTenant.json["code"] == "tenant_not_found")
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "Bad Id"}"#).status == .unprocessableContent)
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme"}"#).status == .created)
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme"}"#).json["code"] == "tenant_exists")
            // A tenant's admin manages its own keys, not tenants, and not another tenant's keys.
            let (acmeAdmin, _) = try await Self.createKey(api, roles: ["admin"], tenant: "acme")
            let asAcme = ["Authorization": "Bearer \(acmeAdmin)"]
            #expect(try await api.call(.get, "/api/v1/tenants", headers: asAcme).status == .forbidden)
            #expect(try await api.call(.get, "/api/v1/cluster/nodes", headers: asAcme).status == .forbidden, "the cluster is the platform's")
            let twice = try await api.call(.post, "/api/v1/api-keys", #"{"name": "x", "roles": ["viewer", "VIEWER", "viewer"]}"#)
            #expect(twice.json["roles"] == ["viewer"], "roles are stored once each")
            let foreign = try await api.call(
                .post,
                "/api/v1/api-keys",
                #"{"name": "x", "roles": ["viewer"], "tenant_id": "default"}"#,
                headers: asAcme
            )
            #expect(foreign.status == .forbidden)
        }
    }

    /// Every collection a tenant grows is bounded (409 `quota_exceeded`, nothing written) and listed in pages.
    @Test(arguments: APIDriver.all) func quotasRefuseWithoutWritingAndListsArePaged(_ driver: APIDriver) async throws {
        let quotas = StoreQuotas(tenants: 2, apiKeysPerTenant: 3, templatesPerTenant: 1, secretsPerTenant: 1, workflowsPerTenant: 1)
        try await withAPIEnvironment(driver, quotas: quotas) { api, _ in
            // The test's own admin key is the first of three.
            let (_, first) = try await Self.createKey(api, roles: ["viewer"], name: "one")
            _ = try await Self.createKey(api, roles: ["viewer"], name: "two")
            let refused = try await api.call(.post, "/api/v1/api-keys", #"{"name": "three", "roles": ["viewer"]}"#)
            #expect(refused.status == .conflict && refused.json["code"] == "quota_exceeded", "\(refused.json)")
            #expect(refused.json["detail"]?.stringValue?.contains("--max-api-keys-per-tenant") == true)
            #expect(try await api.call(.get, "/api/v1/api-keys?limit=500").json["api_keys"]?.arrayValue?.count == 3, "nothing written")
            let created = try await api.call(.get, "/api/v1/audit?action=api_key.create").json["entries"]?.arrayValue ?? []
            #expect(created.count == 2, "the refused key left no audit entry either: \(created.count)")
            #expect(try await api.call(.delete, "/api/v1/api-keys/\(first)").status == .noContent)
            _ = try await Self.createKey(api, roles: ["viewer"], name: "three")
            // Four keys (one revoked), two to a page, newest first.
            var names: [String] = []
            var cursor: String?
            repeat {
                let page = try await api.call(.get, "/api/v1/api-keys?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""))
                #expect(page.status == .ok)
                names += page.json["api_keys"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                cursor = page.json["next_cursor"]?.stringValue
            } while cursor != nil && names.count < 10
            #expect(names.prefix(3) == ["three", "two", "one"] && names.count == 4, "\(names)")

            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme"}"#).status == .created)
            let tenant = try await api.call(.post, "/api/v1/tenants", #"{"id": "beta"}"#)
            #expect(tenant.status == .conflict && tenant.json["code"] == "quota_exceeded")
            let tenants1 = try await api.call(.get, "/api/v1/tenants?limit=1")
            let next = try #require(tenants1.json["next_cursor"]?.stringValue)
            let tenants2 = try await api.call(.get, "/api/v1/tenants?limit=1&cursor=\(next)")
            #expect(tenants1.json["tenants"]?.arrayValue?.first?["id"] == "acme")
            #expect(tenants2.json["tenants"]?.arrayValue?.first?["id"] == "default")

            #expect(try await api.call(.put, "/api/v1/secrets/ONE", #"{"value": "1"}"#).status == .created)
            #expect(try await api.call(.put, "/api/v1/secrets/ONE", #"{"value": "2"}"#).status == .ok, "replacing is not adding")
            #expect(try await api.call(.put, "/api/v1/secrets/TWO", #"{"value": "1"}"#).json["code"] == "quota_exceeded")
            #expect(try await api.call(.get, "/api/v1/secrets").json["secrets"]?.arrayValue?.count == 1)

            #expect(try await api.call(.put, "/api/v1/templates/a", #"{"body": "x"}"#).status == .created)
            #expect(try await api.call(.put, "/api/v1/templates/a", #"{"body": "y"}"#).status == .created, "a new version of a kept name")
            #expect(try await api.call(.put, "/api/v1/templates/b", #"{"body": "x"}"#).json["code"] == "quota_exceeded")
            #expect(try await api.call(.post, "/api/v1/workflows", sequenceWorkflow).status == .created)
            let other = sequenceWorkflow.replacingOccurrences(of: #""name": "greet""#, with: #""name": "other""#)
            let workflow = try await api.call(.post, "/api/v1/workflows", other)
            #expect(workflow.status == .conflict && workflow.json["code"] == "quota_exceeded", "\(workflow.json)")
            #expect(try await api.call(.post, "/api/v1/workflows", sequenceWorkflow).status == .ok, "registering a kept version again is fine")
            let templates = try await api.call(.get, "/api/v1/templates?limit=1")
            #expect(templates.json["templates"]?.arrayValue?.count == 1 && templates.json["next_cursor"] == "a")
        }
    }

    @Test(arguments: APIDriver.all) func tenantsCannotSeeOrTouchEachOthersRows(_ driver: APIDriver) async throws {
        try await withAPI(driver) { api in
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme", "name": "Acme"}"#).status == .created)
            let (acmeKey, _) = try await Self.createKey(api, roles: ["admin"], tenant: "acme")
            let acme = ["Authorization": "Bearer \(acmeKey)"]
            let waiting = #"""
                {"name": "greet", "version": "1.0.0", "definition": {"steps": [
                  {"id": "wait", "type": "wait_for_signal", "config": {"signal": "go"}}]}}
                """#
            // The same name, version and idempotency key in both tenants: independent.
            let mine = try await api.call(.post, "/api/v1/workflows", waiting)
            let theirs = try await api.call(.post, "/api/v1/workflows", waiting, headers: acme)
            #expect(mine.status == .created && theirs.status == .created && mine.json["id"] != theirs.json["id"])
            #expect(theirs.json["created_by"]?.stringValue?.hasPrefix("key:") == true)
            let run = try await api.call(.post, "/api/v1/workflows/greet/execute", "{}", headers: ["Idempotency-Key": "same"])
            let acmeRun = try await api.call(
                .post,
                "/api/v1/workflows/greet/execute",
                "{}",
                headers: ["Idempotency-Key": "same", "Authorization": "Bearer \(acmeKey)"]
            )
            #expect(run.status == .accepted && acmeRun.status == .accepted && run.json["run_id"] != acmeRun.json["run_id"])
            let runID = try #require(run.json["run_id"]?.stringValue)
            let definitionID = try #require(mine.json["id"]?.stringValue)
            let missing = "01900000-0000-7000-8000-000000000000"

            // Every route that names the other tenant's run or definition answers as if it did not exist.
            for (method, path) in [
                (HTTPRequest.Method.get, "/api/v1/executions/\(runID)"), (.get, "/api/v1/executions/\(runID)/history"),
                (.post, "/api/v1/executions/\(runID)/cancel"), (.post, "/api/v1/executions/\(runID)/signals/go"),
                (.post, "/api/v1/executions/\(runID)/retry"), (.post, "/api/v1/executions/\(runID)/rerun"),
                (.delete, "/api/v1/dead-letters/\(runID)"), (.get, "/api/workflows/status/\(runID)"), (.get, "/api/workflows/data/\(runID)"),
                (.post, "/api/workflows/cancel/\(runID)"), (.get, "/api/v1/workflows/\(definitionID)"),
                (.get, "/api/v1/workflows/\(definitionID)/history"), (.post, "/api/v1/workflows/\(definitionID)/retire"),
                (.post, "/api/v1/workflows/\(definitionID)/execute"),
            ] {
                let body = method == .post ? "{}" : nil
                let foreign = try await api.call(method, path, body, headers: acme)
                let absent = try await api.call(
                    method,
                    path.replacingOccurrences(of: runID, with: missing).replacingOccurrences(of: definitionID, with: missing),
                    body,
                    headers: acme
                )
                #expect(foreign.status == .notFound, "\(method) \(path) as the other tenant: \(foreign.status) \(foreign.json)")
                #expect(foreign.json["code"] == absent.json["code"], "\(path): indistinguishable from a missing id")
            }
            // Lists and filters show only the caller's rows.
            let acmeRuns = try await api.call(.get, "/api/v1/executions", headers: acme)
            #expect(acmeRuns.json["executions"]?.arrayValue?.map { $0["run_id"] } == [acmeRun.json["run_id"]])
            #expect(try await api.call(.get, "/api/v1/executions?workflow_id=\(definitionID)", headers: acme).status == .notFound)
            #expect(try await api.call(.get, "/api/v1/executions/\(runID)/children", headers: acme).json["executions"] == [])
            #expect(try await api.call(.get, "/api/v1/workflows", headers: acme).json["workflows"]?.arrayValue?.count == 1)
            let keys = try await api.call(.get, "/api/v1/api-keys", headers: acme)
            #expect(keys.json["api_keys"]?.arrayValue?.allSatisfy { $0["tenant_id"] == "acme" } == true)
            #expect(try await api.call(.delete, "/api/v1/api-keys/test-admin", headers: acme).status == .notFound)
            // And the run the other tenant could not touch is unchanged.
            let after = try await api.call(.get, "/api/v1/executions/\(runID)")
            #expect(after.json["status"] == "RUNNING" || after.json["status"] == "PENDING")
        }
    }

    @Test(arguments: APIDriver.all) func aKeyScopedToWorkflowsSeesAndUsesOnlyThose(_ driver: APIDriver) async throws {
        try await withAPI(driver) { api in
            func waiting(_ name: String, _ version: String = "1.0.0") -> String {
                #"{"name": "\#(name)", "version": "\#(version)", "definition": {"steps": [{"id": "w", "type": "wait_for_signal", "config": {"signal": "go"}}]}}"#
            }
            #expect(try await api.call(.post, "/api/v1/workflows", waiting("payments")).status == .created)
            #expect(try await api.call(.post, "/api/v1/workflows", waiting("loans")).status == .created)
            let payment = try #require(try await api.call(.post, "/api/v1/workflows/payments/execute", "{}").json["run_id"]?.stringValue)
            let loan = try #require(try await api.call(.post, "/api/v1/workflows/loans/execute", "{}").json["run_id"]?.stringValue)
            let created = try await api.call(
                .post,
                "/api/v1/api-keys",
                #"{"name": "payments-team", "roles": ["operator", "author"], "workflows": ["payments"]}"#
            )
            #expect(created.json["workflows"] == ["payments"])
            let scoped = ["Authorization": "Bearer \(try #require(created.json["key"]?.stringValue))"]
            // Its own workflow: seen and used.
            #expect(try await api.call(.get, "/api/v1/executions/\(payment)", headers: scoped).status == .ok)
            #expect(try await api.call(.post, "/api/v1/workflows/payments/execute", "{}", headers: scoped).status == .accepted)
            #expect(try await api.call(.post, "/api/v1/workflows", waiting("payments", "1.1.0"), headers: scoped).status == .created)
            let runs = try await api.call(.get, "/api/v1/executions", headers: scoped).json["executions"]?.arrayValue ?? []
            #expect(runs.count == 2 && runs.allSatisfy { $0["workflow_name"] == "payments" })
            let workflows = try await api.call(.get, "/api/v1/workflows", headers: scoped).json["workflows"]?.arrayValue ?? []
            #expect(workflows.allSatisfy { $0["name"] == "payments" } && workflows.count == 2)
            // Any other workflow answers as if it did not exist.
            for (method, path) in [
                (HTTPRequest.Method.get, "/api/v1/executions/\(loan)"), (.post, "/api/v1/executions/\(loan)/cancel"),
                (.post, "/api/v1/executions/\(loan)/signals/go"), (.get, "/api/v1/executions/\(loan)/history"),
                (.get, "/api/v1/workflows/loans"), (.post, "/api/v1/workflows/loans/execute"), (.get, "/api/v1/executions?workflow_id=loans"),
                (.get, "/api/workflows/status/\(loan)"),
            ] {
                let answer = try await api.call(method, path, method == .post ? "{}" : nil, headers: scoped)
                #expect(answer.status == .notFound, "\(method) \(path): \(answer.status)")
            }
            #expect(try await api.call(.post, "/api/v1/workflows", waiting("loans", "2.0.0"), headers: scoped).status == .forbidden)
            #expect(try await api.call(.get, "/api/v1/executions/\(loan)").json["status"] == "RUNNING", "the other run is untouched")
            let bad = try await api.call(.post, "/api/v1/api-keys", #"{"name": "x", "roles": ["viewer"], "workflows": []}"#)
            #expect(bad.status == .unprocessableContent)
        }
    }

    @Test(arguments: APIDriver.all) func runsAndCommandsRecordWhoDidThem(_ driver: APIDriver) async throws {
        try await withAPI(driver) { api in
            let (operatorKey, operatorID) = try await Self.createKey(api, roles: ["operator"])
            let asOperator = ["Authorization": "Bearer \(operatorKey)"]
            let waiting = #"""
                {"name": "held", "version": "1.0.0", "definition": {"steps": [
                  {"id": "wait", "type": "wait_for_signal", "config": {"signal": "go"}}]}}
                """#
            #expect(try await api.call(.post, "/api/v1/workflows", waiting).json["created_by"] == "key:test-admin")
            let started = try await api.call(.post, "/api/v1/workflows/held/execute", "{}", headers: asOperator)
            let runID = try #require(started.json["run_id"]?.stringValue)
            #expect(try await api.call(.get, "/api/v1/executions/\(runID)").json["created_by"] == .string("key:\(operatorID)"))
            _ = try await api.call(.post, "/api/v1/executions/\(runID)/signals/other", "{}", headers: asOperator)
            _ = try await api.call(.post, "/api/v1/executions/\(runID)/cancel", headers: asOperator)
            _ = try await api.call(.post, "/api/v1/executions/\(runID)/retry")
            let history = try await api.call(.get, "/api/v1/executions/\(runID)/history").json["events"]?.arrayValue ?? []
            func actor(_ type: String) -> JSONValue? { history.first { $0["type"]?.stringValue == type }?["data"]?["actor"] }
            #expect(actor("run_created") == .string("key:\(operatorID)"))
            #expect(actor("signal_received") == .string("key:\(operatorID)"))
            #expect(actor("run_cancelled") == .string("key:\(operatorID)"))
            #expect(actor("run_resumed") == "key:test-admin")
        }
    }
}

/// Rate limits per key and lockout per source, through the real router.
@Suite struct CallerLimitTests {
    @Test func aKeyOverItsRateIsRefusedWithRetryAfter() async throws {
        let limits = CallerLimits(rateLimiter: RateLimiter(defaultPerMinute: 3))
        try await withAPI(limits: limits) { api in
            for i in 0..<3 {
                let ok = try await api.call(.get, "/api/v1/executions")
                #expect(ok.status == .ok, "request \(i)")
                #expect(ok.headers[HTTPField.Name("RateLimit-Limit")!] == "3")
                #expect(ok.headers[HTTPField.Name("RateLimit-Remaining")!] == String(2 - i))
            }
            let refused = try await api.call(.get, "/api/v1/executions")
            #expect(refused.status == .tooManyRequests && refused.json["code"] == "rate_limited")
            #expect(Int(refused.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(try await api.call(.get, "/health").status == .ok, "the probes are never limited")
        }
        // A key's own limit wins over the default.
        try await withAPI(limits: CallerLimits(rateLimiter: RateLimiter(defaultPerMinute: 1000))) { api in
            let created = try await api.call(.post, "/api/v1/api-keys", #"{"name": "slow", "roles": ["viewer"], "rate_limit_per_minute": 2}"#)
            #expect(created.json["rate_limit_per_minute"] == 2)
            let key = try #require(created.json["key"]?.stringValue)
            let statuses = try await (0..<3).asyncMap { _ in
                try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer \(key)"]).status
            }
            #expect(statuses == [.ok, .ok, .tooManyRequests])
            #expect(try await api.call(.get, "/api/v1/executions").status == .ok, "other keys keep their own budget")
        }
    }

    @Test func repeatedFailedAuthenticationsLockTheSourceOut() async throws {
        let limits = CallerLimits(loginGuard: LoginGuard(maxFailures: 3, window: .seconds(600), lockout: .seconds(600)))
        try await withAPI(limits: limits) { api in
            for _ in 0..<3 {
                let bad = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer uwf_wrong-key-0123456789abcdefghij"])
                #expect(bad.status == .unauthorized)
            }
            // Now even the right key is refused from this address, and told when to come back.
            let locked = try await api.call(.get, "/api/v1/executions")
            #expect(locked.status == .tooManyRequests && locked.json["code"] == "locked_out")
            #expect(Int(locked.headers[.retryAfter] ?? "") ?? 0 > 500)
            #expect(try await api.call(.get, "/health").status == .ok)
        }
    }

    /// Behind a trusted load balancer the lockout is per client, as the balancer names it in X-Forwarded-For: one bad
    /// client does not lock out the others sharing the balancer. From an untrusted peer the header counts for nothing.
    @Test func behindATrustedProxyTheLockoutIsPerClient() async throws {
        let limits = CallerLimits(loginGuard: LoginGuard(maxFailures: 3, window: .seconds(600), lockout: .seconds(600)))
        let wrong = "Bearer uwf_wrong-key-0123456789abcdefghij"
        try await withAPIEnvironment(limits: limits, trustedProxies: [IPNetwork("127.0.0.0/8")!]) { api, environment in
            for _ in 0..<3 {
                // The client's own claim on the left is ignored: the balancer appended the address it saw.
                let bad = try await api.call(
                    .get,
                    "/api/v1/executions",
                    headers: ["Authorization": wrong, "X-Forwarded-For": "198.51.100.1, 203.0.113.7"]
                )
                #expect(bad.status == .unauthorized)
            }
            let locked = try await api.call(.get, "/api/v1/executions", headers: ["X-Forwarded-For": "203.0.113.7"])
            #expect(locked.json["code"] == "locked_out", "the bad client is locked out")
            let other = try await api.call(.get, "/api/v1/executions", headers: ["X-Forwarded-For": "203.0.113.8"])
            #expect(other.status == .ok, "another client behind the same balancer is not")
            let spoofed = try await api.call(.get, "/api/v1/executions", headers: ["X-Forwarded-For": "203.0.113.7, 127.0.0.1"])
            #expect(spoofed.json["code"] == "locked_out", "trusted hops on the right are skipped")
            let failures = try await environment.store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100))
                .filter { $0.record.action == "auth.fail" }
            #expect(!failures.isEmpty && failures.allSatisfy { $0.record.source == "203.0.113.7" }, "the audit log names the client")
        }
        // Without --trusted-proxy the header is anyone's to write: the peer is the source, and it is locked out.
        try await withAPI(limits: limits) { api in
            for i in 0..<3 {
                _ = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": wrong, "X-Forwarded-For": "203.0.113.\(i)"])
            }
            let locked = try await api.call(.get, "/api/v1/executions", headers: ["X-Forwarded-For": "203.0.113.99"])
            #expect(locked.json["code"] == "locked_out")
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}
