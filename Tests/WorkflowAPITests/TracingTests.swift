import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// Traces of the built binary, exported over OTLP/HTTP (JSON) to a local receiver: the caller's `traceparent` is
/// continued by the request's span, the run's spans and each step attempt's, and sent on by `http_request` steps.
@Suite struct TracingTests {
    /// An id as OTLP/JSON should send it (hex), or as swift-otel 1.6 sends it (base64, the protobuf JSON mapping).
    static func hex(_ text: String?) -> String? {
        guard let text else { return nil }
        if text.count == 32 || text.count == 16, text.allSatisfy(\.isHexDigit) { return text.lowercased() }
        return Data(base64Encoded: text).map { $0.map { String(format: "%02x", $0) }.joined() }
    }

    @Test func aRunJoinsTheCallersTraceAndPassesItOn() async throws {
        try await LocalHTTPServer.with({ router, _ in
            router.post("/v1/traces") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
            router.post("/remote") { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
        }) { receiver in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-tracing-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let server = try await UWFProcess.serve(
                dataDirectory: directory,
                extra: ["--otlp-endpoint", receiver.baseURL, "--otlp-protocol", "http/json", "--otel-service-name", "uwf-test"]
            )
            defer { _ = server.terminate() }
            let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
            let flow = """
                {"name": "traced", "version": "1.0.0", "definition": {"steps": [
                  {"id": "call", "type": "http_request", "config": {"url": "\(receiver.baseURL)/remote", "method": "POST", "body": {}}},
                  {"id": "after", "type": "noop", "depends_on": ["call"]}
                ]}}
                """
            _ = try await client.registerWorkflow(Data(flow.utf8), yaml: false)
            let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
            var request = HTTPClientRequest(url: server.baseURL + "/api/v1/execute")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "traceparent", value: "00-\(traceID)-00f067aa0ba902b7-01")
            request.body = .bytes(ByteBuffer(string: #"{"workflow_name": "traced", "input": {}}"#))
            let answer = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let body = try await answer.body.collect(upTo: 1 << 20)
            let runID = try #require(try JSONValue.parse(Data(body.readableBytesView))["run_id"]?.stringValue)
            #expect(try await client.wait(for: runID, timeout: .seconds(30)).status == .completed)

            // The step's call carried the trace on.
            let remote = try #require(receiver.requests(path: "/remote").first)
            let sent = try #require(remote.headers["traceparent"], "headers: \(remote.headers)")
            #expect(sent.hasPrefix("00-\(traceID)-"), "\(sent)")

            // The exported spans: the request's, the run's start and end, and the step attempts', all in that trace.
            var names: [String: String] = [:]  // span name -> span id
            try await waitUntil(timeout: .seconds(20)) {
                names = [:]
                for export in receiver.requests(path: "/v1/traces") {
                    guard let document = try? JSONValue.parse(Data(export.body.utf8)) else { continue }
                    for resource in document["resourceSpans"]?.arrayValue ?? [] {
                        for scope in resource["scopeSpans"]?.arrayValue ?? [] {
                            for span in scope["spans"]?.arrayValue ?? [] where Self.hex(span["traceId"]?.stringValue) == traceID {
                                names[span["name"]?.stringValue ?? "", default: ""] = Self.hex(span["spanId"]?.stringValue) ?? ""
                            }
                        }
                    }
                }
                return names.keys.contains("workflow.run traced") && names.keys.contains("step noop")
            }
            #expect(names.keys.contains { $0.contains("/api/v1/execute") }, "the request's span: \(names.keys.sorted())")
            #expect(names["workflow.start traced"] != nil, "\(names.keys.sorted())")
            let stepSpan = try #require(names["step http_request"], "\(names.keys.sorted())")
            #expect(sent.contains("-\(stepSpan)-"), "the remote's parent is the step attempt's span: \(sent) vs \(stepSpan)")
            #expect(names["workflow.run traced"] != nil)
            let export = try #require(receiver.requests(path: "/v1/traces").first)
            #expect(export.body.contains("uwf-test"), "the service name is reported")
        }
    }
}
