import Foundation
import Hummingbird
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// Drives the built `uwf` binary as a user would: over HTTP with the typed client, and through its CLI.
@Suite(.serialized) struct EndToEndTests {
    @Test func killNineLosesNothingAndRecordsNothingTwice() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-kill9-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await LocalHTTPServer.with({ router, _ in
            router.post("/slow") { _, _ in
                try await Task.sleep(for: .milliseconds(200))
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"slept":200}"#))
                )
            }
        }) { remote in
            var server = try await UWFProcess.serve(dataDirectory: directory)
            let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            _ = try await client.registerWorkflow(
                Data(
                    """
                    {"name": "durable", "version": "1.0.0", "definition": {"steps": [
                      {"id": "fetch", "type": "http_request", "config": {"url": "\(remote.baseURL)/slow", "method": "POST", "body": {"run": "${run.id}"}},
                       "retry": {"max_attempts": 5, "initial_interval_ms": 50}},
                      {"id": "left", "type": "transform", "depends_on": ["fetch"], "config": {"output": {"v": "${steps.fetch.output.body.slept}"}}},
                      {"id": "right", "type": "delay", "depends_on": ["fetch"], "config": {"duration_ms": 1500}},
                      {"id": "join", "type": "echo", "depends_on": ["left", "right"], "config": {"v": "${steps.left.output.v}"}}
                    ]}}
                    """.utf8
                ),
                yaml: false
            )
            var runIDs: [String] = []
            for i in 0..<40 {
                runIDs.append(try await client.start(workflow: "durable", input: ["i": .number(Double(i))]).runId)
            }
            // Kill while some calls are in flight and some runs sleep in their durable delay.
            let deadline = ContinuousClock.now + .seconds(20)
            while remote.requests(path: "/slow").count < 20, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let unfinished =
                try await client.runs(status: .running, limit: 100).items.count + (try await client.runs(status: .pending, limit: 100).items.count)
            server.kill9()
            #expect(unfinished > 0, "the kill must land while runs are executing")

            server = try await UWFProcess.serve(dataDirectory: directory)
            let restarted = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            var takeovers = 0
            var resumes = 0
            for id in runIDs {
                let run = try await restarted.wait(for: id, timeout: .seconds(60), pollInterval: .milliseconds(50))
                #expect(run.status == .completed, "run \(id) is \(run.status)")
                #expect(run.output == ["join": ["v": 200]])
                #expect(run.steps.count == 4)
                #expect(run.steps.allSatisfy { $0.status == .success } == true)
                let history = try await restarted.history(id).items
                for step in ["fetch", "left", "right", "join"] {
                    let successes = history.filter { $0.type == "step_succeeded" && $0.stepId == step }.count
                    #expect(successes == 1, "run \(id) step \(step) succeeded \(successes) times")
                }
                #expect(history.filter { $0.type == "run_completed" }.count == 1)
                takeovers += history.filter { $0.type == "step_started" && $0.data["taken_over_from"] != nil }.count
                resumes += history.filter { $0.type == "step_resumed" }.count
            }
            #expect(takeovers + resumes > 0, "the restarted server picked up work the killed one held")
            // Every attempt of a step sent the same key, so the remote could deduplicate re-executions.
            let keysPerRun = Dictionary(grouping: remote.requests(path: "/slow"), by: { $0.body })
            for (_, calls) in keysPerRun { #expect(Set(calls.map { $0.headers["idempotency-key"] }).count == 1) }
            #expect(server.terminate() == 0, "graceful shutdown on SIGTERM: \(server.log)")
        }
    }

    @Test func theReadmeWalkthroughWorksThroughTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-cli-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory)
        defer { _ = server.terminate() }
        let examples = UWFProcess.packageRoot.appendingPathComponent("examples")
        for file in ["loan-approval.yaml", "payment-with-delay.json", "customer-onboarding.json"] {
            let registered = try await UWFProcess.cli(["workflow", "register", examples.appendingPathComponent(file).path], server: server.baseURL)
            #expect(registered.status == 0, "\(file): \(registered.stderr)")
            #expect(registered.stdout.hasPrefix("registered: "))
        }
        let again = try await UWFProcess.cli(
            ["workflow", "register", examples.appendingPathComponent("loan-approval.yaml").path],
            server: server.baseURL
        )
        #expect(again.stdout.hasPrefix("already registered: "))

        let loan = try await UWFProcess.cli(
            [
                "run", "loan-approval", "--wait", "--json", "--input",
                #"{"amount": 25000, "applicant": {"name": "Ada", "score_a": 700, "score_b": 680, "past_defaults": 0}}"#,
            ],
            server: server.baseURL
        )
        #expect(loan.status == 0, "\(loan.stderr)")
        let result = try JSONValue.parse(loan.stdout)
        #expect(result["status"] == "COMPLETED")
        #expect(result["output"]?["approved"]?["decision"] == "approved")
        #expect(result["steps"]?.arrayValue?.first { $0["id"] == "refer" }?["status"] == "SKIPPED")

        let started = try await UWFProcess.cli(
            [
                "run", "payment-with-delay", "--input", #"{"amount": 5, "currency": "EUR", "payee": "ACME", "cooling_off_ms": 60000}"#,
            ],
            server: server.baseURL
        )
        let runID = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(started.status == 0 && runID.count == 36)
        let listed = try await UWFProcess.cli(["runs", "list"], server: server.baseURL)
        #expect(listed.stdout.contains(runID))
        #expect(try await UWFProcess.cli(["cancel", runID], server: server.baseURL).status == 0)
        let status = try await UWFProcess.cli(["status", runID], server: server.baseURL)
        #expect(status.stdout.contains("CANCELLED"))
        let twice = try await UWFProcess.cli(["cancel", runID], server: server.baseURL)
        #expect(twice.status == 1 && twice.stderr.contains("run_not_cancellable"))
        let missing = try await UWFProcess.cli(["run", "no-such-workflow"], server: server.baseURL)
        #expect(missing.status == 1 && missing.stderr.contains("workflow_not_found"))
        let history = try await UWFProcess.cli(["history", runID], server: server.baseURL)
        #expect(history.stdout.contains("run_cancelled"))
        #expect(try await UWFProcess.cli(["workflow", "list"], server: server.baseURL).stdout.contains("customer-onboarding"))
    }
}

extension EndToEndTests {
    /// The bank the funds-transfer and payment-batch examples call (what examples/bank-stub.py does).
    static func bankRoutes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
        @Sendable func reply(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.post("/accounts/:id/debit") { _, _ in reply(.ok, #"{"debit_id":"D-1"}"#) }
        router.post("/accounts/:id/refund") { _, _ in reply(.ok, #"{"refunded":"D-1"}"#) }
        router.post("/accounts/:id/credit") { _, context in
            let id = try context.parameters.require("id")
            return id.hasPrefix("closed") ? reply(.unprocessableContent, #"{"error":"closed"}"#) : reply(.ok, #"{"credit_id":"C-1"}"#)
        }
        router.post("/payouts") { request, _ in
            let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
            return body.contains("closed") ? reply(.unprocessableContent, #"{"error":"closed"}"#) : reply(.ok, #"{"payout_id":"P-1"}"#)
        }
    }

    @Test func theLanguageExamplesWorkThroughTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-cli2-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await LocalHTTPServer.with(Self.bankRoutes) { bank in
            let server = try await UWFProcess.serve(dataDirectory: directory)
            defer { _ = server.terminate() }
            func cli(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
                try await UWFProcess.cli(arguments, server: server.baseURL)
            }
            let examples = UWFProcess.packageRoot.appendingPathComponent("examples")
            for file in ["funds-transfer.json", "payment-batch.json", "kyc-review.yaml"] {
                let registered = try await cli(["workflow", "register", examples.appendingPathComponent(file).path])
                #expect(registered.status == 0, "\(file): \(registered.stderr)")
            }

            // The saga: the credit is refused, the debit is refunded, the operator is told.
            let failed = try await cli([
                "run", "funds-transfer", "--wait", "--json", "--input",
                #"{"bank_url": "\#(bank.baseURL)", "from": "acc-1", "to": "closed-9", "amount": 250}"#,
            ])
            #expect(failed.status == 1)
            let saga = try JSONValue.parse(failed.stdout)
            #expect(saga["status"] == "FAILED" && saga["compensated"] == true)
            let steps = saga["steps"]?.arrayValue ?? []
            #expect(steps.map { $0["id"] } == ["debit", "credit", "debit.compensate", "on_failure"])
            #expect(steps.first { $0["id"] == "debit.compensate" }?["status"] == "SUCCESS")
            #expect(bank.requests(path: "/accounts/acc-1/refund").count == 1)
            let ok = try await cli([
                "run", "funds-transfer", "--wait", "--json", "--input",
                #"{"bank_url": "\#(bank.baseURL)", "from": "acc-1", "to": "acc-2", "amount": 250}"#,
            ])
            #expect(ok.status == 0, "\(ok.stdout)")

            // The batch: one refused payout is reported, the others are paid.
            let batch = try await cli([
                "run", "payment-batch", "--wait", "--json", "--input",
                #"""
                {"bank_url": "\#(bank.baseURL)", "beneficiaries": [{"account": "acc-7", "amount": 10},
                 {"account": "closed-3", "amount": 20}, {"account": "acc-8", "amount": 30}]}
                """#,
            ])
            #expect(batch.status == 0, "\(batch.stdout) \(batch.stderr)")
            let report = try JSONValue.parse(batch.stdout)["output"]
            #expect(report?["lines"] == 3)
            let results = report?["results"]?.arrayValue ?? []
            #expect(results.count == 3 && results[0]["payout_id"] == "P-1" && results[1]["error"] != nil && results[2]["to"] == "acc-8")

            // KYC: the run waits for the customer's documents.
            let kyc = try await cli(["run", "kyc-review", "--input", #"{"customer": {"name": "Ada", "risk": "low"}}"#])
            let kycID = kyc.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let signal = try await cli(["signal", kycID, "documents_received", "--data", #"{"complete": true, "files": ["id.pdf"]}"#])
            #expect(signal.status == 0, "\(signal.stderr)")
            let approved = try await cli(["status", kycID, "--json"])
            var status = try JSONValue.parse(approved.stdout)
            for _ in 0..<100 where status["status"] != "COMPLETED" {
                try await Task.sleep(for: .milliseconds(50))
                status = try JSONValue.parse(try await cli(["status", kycID, "--json"]).stdout)
            }
            #expect(status["output"]?["approve"]?["decision"] == "approved")

            // Incomplete documents fail the run: it becomes a dead letter; retry and rerun from the CLI.
            let incomplete = try await cli(["run", "kyc-review", "--input", #"{"customer": {"name": "Bob", "risk": "low"}}"#])
            let badID = incomplete.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await cli(["signal", badID, "documents_received", "--data", #"{"complete": false}"#]).status == 0)
            var letters = ""
            for _ in 0..<100 where !letters.contains(badID) {
                try await Task.sleep(for: .milliseconds(50))
                letters = try await cli(["dead-letters"]).stdout
            }
            #expect(letters.contains(badID) && letters.contains("reject"))
            let rerun = try await cli(["rerun", badID])
            #expect(rerun.status == 0 && rerun.stdout.trimmingCharacters(in: .whitespacesAndNewlines).count == 36)
            #expect(try await cli(["retry", badID]).status == 0)
            #expect(try await cli(["dead-letters", "--dismiss", kycID]).status == 1, "a completed run is no dead letter")
            let late = try await cli(["signal", kycID, "documents_received"])
            #expect(late.status == 1 && late.stderr.contains("run_finished"))
        }
    }
}

/// The benchmark must keep working; this runs it briefly and asserts no speed.
@Suite struct BenchSmokeTests {
    @Test(arguments: ["seq3", "fanout10", "poc", "read-mix", "foreach100"])
    func benchRunsAndReports(_ scenario: String) async throws {
        let small = scenario == "foreach100"  // 100 items per run
        let arguments =
            ["bench", "--scenario", scenario, "--json", "--warmup", small ? "1" : "5"]
            + (scenario == "poc" || scenario == "read-mix"
                ? ["--rate", "40", "--duration", "1", "--concurrency", "4"] : ["--count", small ? "4" : "40", "--concurrency", "4"])
        let result = try await UWFProcess.cli(arguments, server: "unused")
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONValue.parse(result.stdout)
        #expect(report["scenario"] == .string(scenario))
        #expect(report["errors"] == 0 && report["failed_runs"] == 0)
        #expect((report["count"]?.numberValue ?? 0) > 0)
        #expect((report["completed_per_second"]?.numberValue ?? 0) > 0)
        #expect(report["api_latency_ms"]?["p95"]?.numberValue != nil)
        #expect(report["server_cpu_seconds_per_1000"]?.numberValue != nil)
        #expect(report["server_rss_mib"]?.numberValue != nil)
        if scenario == "read-mix" { #expect((report["read_latency_ms"]?["count"]?.numberValue ?? 0) > 0) }
    }
}

extension EndToEndTests {
    /// The README's four-eyes walkthrough, command by command, through the real CLI and server.
    @Test func theFourEyesWalkthroughWorksThroughTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-4eyes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory)
        defer { _ = server.terminate() }
        func cli(_ arguments: [String], key: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
            try await UWFProcess.cli(arguments + (key.map { ["--api-key", $0] } ?? []), server: server.baseURL)
        }
        let example = UWFProcess.packageRoot.appendingPathComponent("examples/wire-release.yaml").path
        #expect(try await cli(["workflow", "register", example]).status == 0)
        let alice = try await cli(["apikey", "create", "--name", "alice", "--roles", "approver"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let bob = try await cli(["apikey", "create", "--name", "bob", "--roles", "approver"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(alice.hasPrefix("uwf_") && bob.hasPrefix("uwf_"))
        let run = try await cli(["run", "wire-release", "--input", #"{"amount": 250000, "iban": "DE89370400440532013000"}"#])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(run.count == 36)
        try await waitUntil { try await cli(["status", run]).stdout.contains("WAITING") }
        let own = try await cli(["approve", run, "four_eyes"])
        #expect(own.status == 1 && own.stderr.contains("self_approval"), "\(own)")
        #expect(try await cli(["approvals"], key: alice).stdout.contains(run))
        let first = try await cli(["approve", run, "four_eyes", "--comment", "beneficiary checked"], key: alice)
        #expect(first.status == 0 && first.stdout.contains("step WAITING"), "\(first)")
        let second = try await cli(["approve", run, "four_eyes"], key: bob)
        #expect(second.status == 0, "\(second)")
        try await waitUntil { try await cli(["status", run]).stdout.contains("COMPLETED") }
        let audit = try await cli(["audit", "list", "--limit", "10"])
        #expect(audit.stdout.contains("approval.approve") && audit.stdout.contains("request.refused"), "\(audit.stdout)")
        let verified = try await cli(["audit", "verify"])
        #expect(verified.status == 0 && verified.stdout.hasPrefix("ok: "), "\(verified)")
        // Exported, the log verifies offline too; a changed line is caught there as well.
        let export = directory.appendingPathComponent("audit.jsonl").path
        #expect(try await cli(["audit", "export", "--output", export]).status == 0)
        #expect(try await cli(["audit", "verify", "--file", export]).status == 0)
        let lines = try String(contentsOfFile: export, encoding: .utf8)
        try lines.replacingOccurrences(of: "beneficiary checked", with: "beneficiary unchecked").write(
            toFile: export,
            atomically: true,
            encoding: .utf8
        )
        let tampered = try await cli(["audit", "verify", "--file", export])
        #expect(tampered.status == 1 && tampered.stdout.contains("hash_mismatch"), "\(tampered)")

        // As the README does it: the value on standard input, never on the command line.
        let secret = try await UWFProcess.cli(["secret", "set", "KYC_TOKEN"], server: server.baseURL, stdin: "tok_live_123")
        #expect(secret.status == 0, "\(secret)")
        #expect(try await cli(["secret", "list"]).stdout.contains("KYC_TOKEN"))
        // A step uses it against a remote that echoes it back, and fails on a second call that quotes it.
        try await LocalHTTPServer.with({ router, _ in
            router.post("/kyc") { request, _ in
                Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"echo": "\#(request.headers[.authorization] ?? "")"}"#))
                )
            }
            router.post("/broken") { request, _ in
                Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "rejected \(request.headers[.authorization] ?? "")")))
            }
        }) { remote in
            let file = directory.appendingPathComponent("kyc.json")
            let definition = """
                {"name": "kyc-call", "version": "1.0.0", "definition": {"steps": [
                  {"id": "call", "type": "http_request", "config": {"url": "\(remote.baseURL)/kyc", "method": "POST",
                   "headers": {"Authorization": "Bearer ${secrets.KYC_TOKEN}"}}},
                  {"id": "broken", "type": "http_request", "depends_on": ["call"], "config": {"url": "\(remote.baseURL)/broken",
                   "method": "POST", "headers": {"Authorization": "Bearer ${secrets.KYC_TOKEN}"}}}
                ]}}
                """
            try definition.write(to: file, atomically: true, encoding: .utf8)
            #expect(try await cli(["workflow", "register", file.path]).status == 0)
            let ran = try await cli(["run", "kyc-call", "--wait", "--json"])
            #expect(ran.status == 1 && ran.stdout.contains("Bearer ***") && !ran.stdout.contains("tok_live_123"), "\(ran)")
            #expect(remote.requests(path: "/kyc").first?.headers["authorization"] == "Bearer tok_live_123")
            let runID = (try? JSONValue.parse(ran.stdout))?["run_id"]?.stringValue ?? ""
            let history = try await cli(["history", runID, "--json"])
            #expect(history.status == 0 && !history.stdout.contains("tok_live_123") && history.stdout.contains("step_failed"), "\(history)")
        }
        // The server's log never holds the value, nor the keys.
        #expect(!server.log.contains("tok_live_123") && !server.log.contains(alice))
        // The raw database file holds neither the secret's value nor the keys.
        let database = FileManager.default.contents(atPath: directory.appendingPathComponent("uwf.sqlite").path) ?? Data()
        #expect(database.range(of: Data("tok_live_123".utf8)) == nil && database.range(of: Data(alice.utf8)) == nil)
    }
}
