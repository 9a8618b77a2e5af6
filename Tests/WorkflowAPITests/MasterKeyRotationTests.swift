import Foundation
import Hummingbird
import Testing
import WorkflowClient
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// The documented master key rotation, with the built binary: add the new key, restart, rotate, drop the old key,
/// restart. Everything sealed under the old key (secrets, webhook signing secrets) must still work after it is gone.
@Suite struct MasterKeyRotationTests {
    @Test func afterARotationTheOldKeyCanBeDroppedWithoutLosingSecretsOrWebhooks() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-rotate-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data")
        let keyFile = root.appendingPathComponent("master.keys")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let old = MasterKeyring.generateLine(id: "k1")
        let new = MasterKeyring.generateLine(id: "k2")
        func serve(_ lines: [String]) async throws -> (UWFProcess, WorkflowClient) {
            try (lines.joined(separator: "\n") + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
            let server = try await UWFProcess.serve(dataDirectory: data, extra: ["--master-key-file", keyFile.path])
            return (server, WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey))
        }
        try await LocalHTTPServer.with({ router, _ in
            router.post("/hooks") { _, _ in Response(status: .noContent) }
            router.post("/echo") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
        }) { remote in
            // Under k1: a secret, a webhook and a workflow that sends the secret.
            var (server, client) = try await serve([old])
            _ = try await client.setSecret("TOKEN", value: "s3cret-value")
            let hook = try await client.createWebhook(["url": .string("\(remote.baseURL)/hooks"), "event_types": ["run.completed"]])
            _ = try await client.registerWorkflow(
                Data(
                    """
                    {"name": "send", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request",
                       "config": {"url": "\(remote.baseURL)/echo", "method": "POST", "headers": {"Authorization": "Bearer ${secrets.TOKEN}"}}}
                    ]}}
                    """.utf8
                ),
                yaml: false
            )
            _ = server.terminate()

            // k2 becomes the active key, k1 still opens what it sealed; the rotation re-wraps both under k2.
            (server, client) = try await serve([new, old])
            let rotated = try await client.rotateMasterKey()
            #expect(rotated["active_key_id"] == "k2")
            #expect((rotated["rewrapped"]?.numberValue ?? 0) >= 2, "the secret and the webhook's signing secret: \(rotated)")
            _ = server.terminate()

            // k1 is gone: the secret still reaches the remote, and deliveries are still signed with the same secret.
            (server, client) = try await serve([new])
            defer { _ = server.terminate() }
            let started = try await client.start(workflow: "send")
            let done = try await client.wait(for: started.runId, timeout: .seconds(30))
            #expect(done.status == .completed, "\(done.error?.canonicalString() ?? "")")
            #expect(remote.requests(path: "/echo").last?.headers["authorization"] == "Bearer s3cret-value")
            try await waitUntil("the run.completed delivery arrived") { !remote.requests(path: "/hooks").isEmpty }
            let delivery = try #require(remote.requests(path: "/hooks").first)
            let id = try #require(delivery.headers["webhook-id"])
            let timestamp = try #require(delivery.headers["webhook-timestamp"].flatMap { Int64($0) })
            let expected = EventRelay.signature(id: id, timestamp: timestamp, body: delivery.body, secrets: [hook.secret])
            #expect(delivery.headers["webhook-signature"]?.split(separator: " ").contains(Substring(expected)) == true)
            #expect(!server.log.contains("s3cret-value"), "the secret never reaches the log")
        }
    }
}
