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
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"slept":200}"#)))
            }
        }) { remote in
            var server = try await UWFProcess.serve(dataDirectory: directory)
            let client = WorkflowClient(baseURL: server.baseURL)
            _ = try await client.registerWorkflow(Data("""
                {"name": "durable", "version": "1.0.0", "definition": {"steps": [
                  {"id": "fetch", "type": "http_request", "config": {"url": "\(remote.baseURL)/slow", "method": "POST", "body": {"run": "${run.id}"}},
                   "retry": {"max_attempts": 5, "initial_interval_ms": 50}},
                  {"id": "left", "type": "transform", "depends_on": ["fetch"], "config": {"output": {"v": "${steps.fetch.output.body.slept}"}}},
                  {"id": "right", "type": "delay", "depends_on": ["fetch"], "config": {"duration_ms": 1500}},
                  {"id": "join", "type": "echo", "depends_on": ["left", "right"], "config": {"v": "${steps.left.output.v}"}}
                ]}}
                """.utf8), yaml: false)
            var runIDs: [String] = []
            for i in 0..<40 {
                runIDs.append(try await client.start(workflow: "durable", input: ["i": .number(Double(i))]).runId)
            }
            // Kill while some calls are in flight and some runs sleep in their durable delay.
            let deadline = ContinuousClock.now + .seconds(20)
            while remote.requests(path: "/slow").count < 20, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            let unfinished = try await client.runs(status: "RUNNING", limit: 100).items.count + (try await client.runs(status: "PENDING", limit: 100).items.count)
            server.kill9()
            #expect(unfinished > 0, "the kill must land while runs are executing")

            server = try await UWFProcess.serve(dataDirectory: directory)
            let restarted = WorkflowClient(baseURL: server.baseURL)
            var takeovers = 0
            var resumes = 0
            for id in runIDs {
                let run = try await restarted.wait(for: id, timeout: .seconds(60), pollInterval: .milliseconds(50))
                #expect(run.status == "COMPLETED", "run \(id) is \(run.status)")
                #expect(run.output == ["join": ["v": 200]])
                #expect(run.steps?.count == 4)
                #expect(run.steps?.allSatisfy { $0.status == "SUCCESS" } == true)
                let history = try await restarted.history(id)
                for step in ["fetch", "left", "right", "join"] {
                    let successes = history.filter { $0.type == "step_succeeded" && $0.stepId == step }.count
                    #expect(successes == 1, "run \(id) step \(step) succeeded \(successes) times")
                }
                #expect(history.filter { $0.type == "run_completed" }.count == 1)
                takeovers += history.filter { $0.type == "step_started" && $0.data?["taken_over_from"] != nil }.count
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
            let registered = try UWFProcess.cli(["workflow", "register", examples.appendingPathComponent(file).path], server: server.baseURL)
            #expect(registered.status == 0, "\(file): \(registered.stderr)")
            #expect(registered.stdout.hasPrefix("registered: "))
        }
        let again = try UWFProcess.cli(["workflow", "register", examples.appendingPathComponent("loan-approval.yaml").path], server: server.baseURL)
        #expect(again.stdout.hasPrefix("already registered: "))

        let loan = try UWFProcess.cli([
            "run", "loan-approval", "--wait", "--json", "--input",
            #"{"amount": 25000, "applicant": {"name": "Ada", "score_a": 700, "score_b": 680, "past_defaults": 0}}"#,
        ], server: server.baseURL)
        #expect(loan.status == 0, "\(loan.stderr)")
        let result = try JSONValue.parse(loan.stdout)
        #expect(result["status"] == "COMPLETED")
        #expect(result["output"]?["approved"]?["decision"] == "approved")
        #expect(result["steps"]?.arrayValue?.first { $0["id"] == "refer" }?["status"] == "SKIPPED")

        let started = try UWFProcess.cli([
            "run", "payment-with-delay", "--input", #"{"amount": 5, "currency": "EUR", "payee": "ACME", "cooling_off_ms": 60000}"#,
        ], server: server.baseURL)
        let runID = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(started.status == 0 && runID.count == 36)
        let listed = try UWFProcess.cli(["runs", "list"], server: server.baseURL)
        #expect(listed.stdout.contains(runID))
        #expect(try UWFProcess.cli(["cancel", runID], server: server.baseURL).status == 0)
        let status = try UWFProcess.cli(["status", runID], server: server.baseURL)
        #expect(status.stdout.contains("CANCELLED"))
        let twice = try UWFProcess.cli(["cancel", runID], server: server.baseURL)
        #expect(twice.status == 1 && twice.stderr.contains("run_not_cancellable"))
        let missing = try UWFProcess.cli(["run", "no-such-workflow"], server: server.baseURL)
        #expect(missing.status == 1 && missing.stderr.contains("workflow_not_found"))
        let history = try UWFProcess.cli(["history", runID], server: server.baseURL)
        #expect(history.stdout.contains("run_cancelled"))
        #expect(try UWFProcess.cli(["workflow", "list"], server: server.baseURL).stdout.contains("customer-onboarding"))
    }
}

/// The benchmark must keep working; this runs it briefly and asserts no speed.
@Suite struct BenchSmokeTests {
    @Test(arguments: ["seq3", "fanout10", "poc", "read-mix"])
    func benchRunsAndReports(_ scenario: String) throws {
        let arguments = ["bench", "--scenario", scenario, "--json", "--warmup", "5"]
            + (scenario == "poc" || scenario == "read-mix" ? ["--rate", "40", "--duration", "1", "--concurrency", "4"] : ["--count", "40", "--concurrency", "4"])
        let result = try UWFProcess.cli(arguments, server: "unused")
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
