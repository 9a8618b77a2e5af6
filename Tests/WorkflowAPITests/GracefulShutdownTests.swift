import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// SIGTERM under load, to the built binary: it stops accepting, lets executing steps finish and records them, and
/// exits; after a restart nothing that finished runs again and every accepted run completes.
@Suite struct GracefulShutdownTests {
    @Test func sigtermUnderLoadDrainsWithoutRepeatingOrLosingWork() async throws {
        try await LocalHTTPServer.with({ router, _ in
            router.post("/effect") { _, _ in
                try await Task.sleep(for: .milliseconds(400))  // still executing when SIGTERM arrives
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
        }) { remote in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-sigterm-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let flags = ["--shutdown-grace-seconds", "20"]
            let server = try await UWFProcess.serve(dataDirectory: directory, extra: flags)
            let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            let flow = """
                {"name": "effects", "version": "1.0.0", "definition": {"steps": [
                  {"id": "a", "type": "http_request", "config": {"url": "\(remote.baseURL)/effect", "method": "POST", "body": {"i": "${input.i}", "s": "a"}}},
                  {"id": "b", "type": "http_request", "depends_on": ["a"], "config": {"url": "\(remote.baseURL)/effect", "method": "POST", "body": {"i": "${input.i}", "s": "b"}}}
                ]}}
                """
            _ = try await client.registerWorkflow(Data(flow.utf8), yaml: false)
            var accepted: [String] = []
            for i in 0..<40 { accepted.append(try await client.start(workflow: "effects", input: ["i": .number(Double(i))]).runId) }
            try await waitUntil(timeout: .seconds(30)) { remote.requests(path: "/effect").count >= 20 }

            // Starts keep arriving while the node drains: each is either accepted (and must complete) or refused.
            let base = server.baseURL
            let late = Task { () -> [String] in
                var ids: [String] = []
                var i = 1000
                while !Task.isCancelled {
                    let starter = WorkflowClient(baseURL: base, apiKey: testAdminKey, timeout: .seconds(5))
                    if let id = try? await starter.start(workflow: "effects", input: ["i": .number(Double(i))]).runId { ids.append(id) }
                    i += 1
                    try? await Task.sleep(for: .milliseconds(25))
                }
                return ids
            }
            try await Task.sleep(for: .milliseconds(100))
            let executing = remote.requests(path: "/effect").filter { $0.finishedAt == nil }.count
            let began = ContinuousClock.now
            let status = try await offThePool { server.terminate() }
            let took = ContinuousClock.now - began
            late.cancel()
            accepted += await late.value
            #expect(status == 0, "a clean exit: \(server.log)")
            #expect(took < .seconds(20), "drained within the grace: \(took)")
            #expect(executing > 0, "steps were executing at SIGTERM")
            let beforeRestart = remote.requests(path: "/effect")
            #expect(beforeRestart.allSatisfy { $0.finishedAt != nil && !$0.abandoned }, "every executing step was let finish")

            let restarted = try await UWFProcess.serve(dataDirectory: directory, extra: flags)
            defer { _ = restarted.terminate() }
            let again = WorkflowClient(baseURL: restarted.baseURL, apiKey: testAdminKey)
            for id in accepted {
                let run = try await again.wait(for: id, timeout: .seconds(60))
                #expect(run.status == .completed, "accepted run \(id) completed: \(run.status)")
            }
            // Each step's effect happened once: what finished before SIGTERM was recorded and not run again.
            var calls: [String: Int] = [:]
            for request in remote.requests(path: "/effect") {
                let body = try JSONValue.parse(Data(request.body.utf8))
                calls["\(body["i"]?.canonicalString() ?? "?")/\(body["s"]?.stringValue ?? "?")", default: 0] += 1
            }
            #expect(calls.count == accepted.count * 2, "\(calls.count) effects for \(accepted.count) runs")
            let repeated = calls.filter { $0.value > 1 }
            #expect(repeated.isEmpty, "effects run again after the restart: \(repeated.keys.sorted().prefix(10))")
        }
    }
}
