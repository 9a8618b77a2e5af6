import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import PostgresNIO
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowTestSupport

/// Secrets reach the remote system and nothing else; `http_request` goes only where the egress policy lets it.
@Suite struct SecretsAndEgressTests {
    static let secretValue = "s3cr3t-Value-9f27c1"

    static func steps(_ run: JSONValue) -> [JSONValue] { run["steps"]?.arrayValue ?? [] }

    /// A remote system that echoes the Authorization header back (as a careless one might), and one that redirects.
    static func routes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
        router.post("/echo") { request, _ in
            let seen = request.headers[.authorization] ?? ""
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"seen": "\#(seen)", "note": "token \#(seen.dropFirst(7)) accepted"}"#))
            )
        }
        router.post("/reject") { request, _ in
            Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "bad token: \(request.headers[.authorization] ?? "")")))
        }
        router.get("/to-metadata") { _, _ in Response(status: .found, headers: [.location: "http://169.254.169.254/latest/meta-data/"]) }
        router.get("/to-echo") { _, _ in Response(status: .temporaryRedirect, headers: [.location: "/target"]) }
        router.get("/target") { request, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"auth": "\#(request.headers[.authorization] ?? "none")"}"#))
            )
        }
        router.get("/to-other-host") { request, _ in
            let port = request.head.authority?.split(separator: ":").last ?? ""
            return Response(status: .found, headers: [.location: "http://localhost:\(port)/target"])
        }
    }

    @Test(arguments: APIDriver.all) func aSecretReachesTheRemoteSystemAndNeverTheDatabaseTheAPIOrTheHistory(_ driver: APIDriver) async throws {
        try await LocalHTTPServer.with(Self.routes) { remote in
            try await withAPIEnvironment(driver) { client, environment in
                let (set, info, _) = try await client.call(.put, "/api/v1/secrets/API_TOKEN", #"{"value": "\#(Self.secretValue)"}"#)
                #expect(set == .created && info["name"] == "API_TOKEN" && info["value"] == nil, "\(info)")
                #expect(try await client.call(.put, "/api/v1/secrets/API_TOKEN", #"{"value": "\#(Self.secretValue)"}"#).status == .ok, "replaced")
                #expect(try await client.call(.put, "/api/v1/secrets/1bad", #"{"value": "x"}"#).status == .unprocessableContent)
                #expect(try await client.call(.put, "/api/v1/secrets/EMPTY", #"{"value": ""}"#).status == .unprocessableContent)
                let keys = try await makeKeys(client, ["operator": ["operator"]])
                #expect(try await client.call(.put, "/api/v1/secrets/X", #"{"value": "x"}"#, headers: bearer(keys["operator"])).status == .forbidden)

                let definition = """
                    {"name": "pay", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request",
                       "config": {"url": "\(remote.baseURL)/echo", "method": "POST", "headers": {"Authorization": "Bearer ${secrets.API_TOKEN}"},
                                  "body": {"note": "${input.note}"}}},
                      {"id": "copy", "type": "transform", "depends_on": ["call"], "config": {"output": "${steps.call.output.body}"}},
                      {"id": "refused", "type": "http_request", "depends_on": ["copy"],
                       "config": {"url": "\(remote.baseURL)/reject", "method": "POST", "headers": {"Authorization": "Bearer ${secrets.API_TOKEN}"}}}
                    ], "output": {"copied": "${steps.copy.output}"}}}
                    """
                #expect(try await client.call(.post, "/api/v1/workflows", definition).status == .created)
                // A value from the run cannot smuggle a reference in: it is sent as the text it is.
                let (_, started, _) = try await client.call(
                    .post,
                    "/api/v1/execute",
                    #"{"workflow_name": "pay", "input": {"note": "${secrets.API_TOKEN}"}}"#
                )
                let runID = try #require(started["run_id"]?.stringValue)
                let run = try await client.waitForRun(runID)
                #expect(run["status"] == "FAILED", "the last call is refused by the remote: \(run)")
                let sent = try #require(remote.requests(path: "/echo").first)
                #expect(sent.headers["authorization"] == "Bearer \(Self.secretValue)", "the remote got the secret: \(sent.headers)")
                #expect(sent.body.contains("${secrets.API_TOKEN}") && !sent.body.contains(Self.secretValue), "input is not resolved: \(sent.body)")
                #expect(Self.steps(run).first { $0["id"] == "copy" }?["output"]?["seen"] == "Bearer ***", "what a later step read is masked too")
                let steps = run["steps"]?.arrayValue ?? []
                #expect(steps.first { $0["id"] == "call" }?["output"]?["body"]?["seen"] == "Bearer ***", "\(steps)")
                #expect(steps.first { $0["id"] == "refused" }?["error"]?["details"]?["body"] == "bad token: Bearer ***", "\(steps)")

                // Everything the API answers, and the database itself, is free of the value.
                var answers: [String] = []
                for path in [
                    "/api/v1/executions/\(runID)", "/api/v1/executions/\(runID)/history", "/api/v1/executions", "/api/v1/secrets",
                    "/api/v1/audit?limit=500", "/api/v1/workflows/pay", "/api/v1/dead-letters", "/api/workflows/data/\(runID)",
                ] {
                    let (status, json, _) = try await client.call(.get, path)
                    #expect(status == .ok, "\(path): \(json)")
                    answers.append(json.canonicalString())
                }
                for answer in answers { #expect(!answer.contains(Self.secretValue)) }
                #expect(answers[3].contains("API_TOKEN"))
                if let path = environment.sqlitePath {
                    for file in [path, path + "-wal"] {
                        let bytes = FileManager.default.contents(atPath: file) ?? Data()
                        #expect(bytes.range(of: Data(Self.secretValue.utf8)) == nil, "\(file) holds the secret")
                    }
                    #expect((FileManager.default.contents(atPath: path) ?? Data()).count > 0)
                } else if let postgres = environment.postgres {
                    var dump = ""
                    for table in ["runs", "step_runs", "run_events", "tasks", "secrets", "audit_log", "workflow_definitions"] {
                        for row in try await postgres.client.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) t")).collect() {
                            dump += try row.decode(String.self)
                        }
                    }
                    #expect(dump.contains("API_TOKEN") && !dump.contains(Self.secretValue), "rows hold the secret")
                }

                // A reference to a secret that does not exist fails the step, and says which.
                let missing = definition.replacingOccurrences(of: "\"pay\"", with: "\"pay2\"").replacingOccurrences(of: "API_TOKEN", with: "NOT_SET")
                #expect(try await client.call(.post, "/api/v1/workflows", missing).status == .created)
                let (_, second, _) = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "pay2", "input": {"note": "x"}}"#)
                let failed = try await client.waitForRun(try #require(second["run_id"]?.stringValue))
                #expect(failed["steps"]?.arrayValue?.first?["error"]?["code"] == "secret_not_found", "\(failed)")
                // Only text may sit beside a secret in one string.
                let mixed = """
                    {"name": "mixed", "version": "1.0.0", "definition": {"steps": [
                      {"id": "c", "type": "http_request", "config": {"url": "http://x.test/", "headers": {"A": "${secrets.A}-${input.b}"}}}]}}
                    """
                let (mixedStatus, mixedProblem, _) = try await client.call(.post, "/api/v1/workflows", mixed)
                #expect(mixedStatus == .unprocessableContent && mixedProblem.canonicalString().contains("/definition/steps/0/config/headers/A"))
                #expect(try await client.call(.delete, "/api/v1/secrets/API_TOKEN").status == .noContent)
                #expect(try await client.call(.delete, "/api/v1/secrets/API_TOKEN").json["code"] == "secret_not_found")
            }
        }
    }

    @Test func httpRequestStepsGoOnlyWhereTheEgressPolicyAllows() async throws {
        try await LocalHTTPServer.with(Self.routes) { remote in
            try await LocalHTTPServer.with({ _, _ in }) { ownAPI in
                // `ownAPI` stands in for this server's own port.
                let ownPort = Int(ownAPI.baseURL.split(separator: ":").last ?? "") ?? 0
                try await withAPIEnvironment(egress: EgressPolicy(ownPorts: OwnPorts([ownPort]))) { client, _ in
                    func outcome(
                        _ url: String,
                        method: String = "GET"
                    ) async throws -> (status: String, code: String?, message: String?, output: JSONValue?) {
                        let name = "e\(UInt32.random(in: 0..<UInt32.max))"
                        let definition: JSONValue = [
                            "name": .string(name), "version": "1.0.0",
                            "definition": [
                                "steps": [
                                    [
                                        "id": "c", "type": "http_request",
                                        "config": ["url": .string(url), "method": .string(method), "headers": ["Authorization": "Bearer abc"]],
                                    ]
                                ]
                            ],
                        ]
                        #expect(try await client.call(.post, "/api/v1/workflows", definition.canonicalString()).status == .created)
                        let (_, started, _) = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "\#(name)"}"#)
                        let run = try await client.waitForRun(try #require(started["run_id"]?.stringValue))
                        let step = run["steps"]?.arrayValue?.first
                        return (
                            run["status"]?.stringValue ?? "", step?["error"]?["code"]?.stringValue, step?["error"]?["message"]?.stringValue,
                            step?["output"]
                        )
                    }
                    let metadata = try await outcome("http://169.254.169.254/latest/meta-data/")
                    #expect(metadata.code == "egress_denied" && metadata.message?.contains("169.254.0.0/16") == true, "\(metadata)")
                    // The server's own API, however its address is spelt.
                    for host in ["127.0.0.1", "localhost", "2130706433", "0x7f.1", "127.1", "0", "[::ffff:127.0.0.1]"] {
                        let own = try await outcome("http://\(host):\(ownPort)/api/v1/executions")
                        // `0` is 0.0.0.0, refused before the port is even looked at.
                        #expect(
                            own.code == "egress_denied" && (own.message?.contains(host == "0" ? "0.0.0.0/8" : "own API") ?? false),
                            "\(host): \(own)"
                        )
                    }
                    #expect(try await outcome(remote.baseURL + "/target").status == "COMPLETED", "other local ports are allowed by default")
                    // Redirects are checked hop by hop; credentials do not follow a redirect to another host.
                    let toMetadata = try await outcome(remote.baseURL + "/to-metadata")
                    #expect(toMetadata.code == "egress_denied", "\(toMetadata)")
                    let sameHost = try await outcome(remote.baseURL + "/to-echo")
                    #expect(sameHost.status == "COMPLETED" && sameHost.output?["body"]?["auth"] == "Bearer abc", "\(sameHost)")
                    let otherHost = try await outcome(remote.baseURL + "/to-other-host")
                    #expect(otherHost.status == "COMPLETED" && otherHost.output?["body"]?["auth"] == "none", "\(otherHost)")

                    // A tenant's deny list is checked on the resolved address (a name resolving to a denied one too).
                    let (set, _, _) = try await client.call(.put, "/api/v1/tenant/settings", #"{"egress_deny": ["127.0.0.0/8"]}"#)
                    #expect(set == .ok)
                    let denied = try await outcome(remote.baseURL.replacingOccurrences(of: "127.0.0.1", with: "localhost") + "/target")
                    #expect(denied.code == "egress_denied" && denied.message?.contains("127.0.0.0/8") == true, "\(denied)")
                    // An allow list can open what the node refuses by default, but a deny wins over it.
                    _ = try await client.call(.put, "/api/v1/tenant/settings", #"{"egress_allow": ["127.0.0.0/8"], "egress_deny": []}"#)
                    let allowed = try await outcome("http://127.0.0.1:\(ownPort)/nothing-here")
                    #expect(allowed.code == "http_error", "explicitly allowed, so it was called (and answered 404): \(allowed)")
                }
            }
        }
    }
}
