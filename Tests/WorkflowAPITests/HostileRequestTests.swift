import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import WorkflowPrimitive
import WorkflowTestSupport

/// Issue #9 against the built binary over real HTTP: inputs that used to kill, bloat or wedge the server are answered
/// with a problem+json error, and the server stays up with bounded memory.
@Suite(.serialized) struct HostileRequestTests {
    func withServer(_ extra: [String] = [], _ body: (UWFProcess) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-hostile-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory, extra: extra)
        defer { _ = server.terminate() }
        try await body(server)
        #expect(server.isRunning, "the server is still up: \(server.log.suffix(2000))")
    }

    func send(
        _ server: UWFProcess,
        _ method: HTTPMethod,
        _ path: String,
        _ body: String? = nil,
        type: String? = "application/json"
    )
        async throws -> (status: Int, body: JSONValue)
    {
        var request = HTTPClientRequest(url: server.baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            if let type { request.headers.add(name: "Content-Type", value: type) }
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), (try? JSONValue.parse(Data(bytes.readableBytesView))) ?? .null)
    }

    @Test func crashClassInputsAreRefusedAndTheServerStaysUp() async throws {
        try await withServer { server in
            let baseline = server.residentKiB
            // Finding 3: a seven-level alias bomb (10^7 nodes, ~34 MB if it were expanded) is refused.
            var bomb = "name: bomb\nversion: 1.0.0\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
            for level in 1...7 { bomb += "a\(level): &a\(level) [\(Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ","))]\n" }
            let refused = try await send(server, .POST, "/api/v1/workflows", bomb, type: "application/yaml")
            #expect(refused.status == 400)
            #expect(refused.body["code"] == "malformed_body")
            #expect(server.residentKiB < baseline + 100_000, "memory stayed bounded: \(server.residentKiB) KiB")

            // Finding 8: a 600-level definition is refused, and listing keeps working.
            let deep =
                "{\"name\": \"deep\", \"version\": \"1.0.0\", \"definition\": {\"steps\": [{\"id\": \"a\", \"type\": \"echo\", \"config\": "
                + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}]}}"
            #expect(try await send(server, .POST, "/api/v1/workflows", deep).status == 400)
            #expect(try await send(server, .GET, "/api/v1/workflows").status == 200)

            // Finding 4: deep expressions are refused at registration with a pointer.
            let parens = String(repeating: "(", count: 40_000) + "1" + String(repeating: ")", count: 40_000)
            let expression = try await send(
                server,
                .POST,
                "/api/v1/workflows",
                """
                {"name": "expr", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop", "when": "\(parens)"}]}}
                """
            )
            #expect(expression.status == 422)
            #expect(expression.body["errors"]?.arrayValue?.first?["pointer"] == "/definition/steps/0/when")

            // Finding 10: duplicate keys, out-of-range numbers and the wrong media type are refused.
            let duplicate = try await send(
                server,
                .POST,
                "/api/v1/workflows",
                #"{"name": "d", "name": "e", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
            )
            #expect(duplicate.status == 400)
            #expect(try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "x", "input": {"n": 1e400}}"#).status == 400)
            let plain = try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "x"}"#, type: "text/plain")
            #expect(plain.status == 415)
            #expect(plain.body["code"] == "unsupported_media_type")
            #expect(try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "x"}"#, type: nil).status == 415)

            // Finding 2: the shipped payment-with-delay, given a delay of Int64.max in its input, fails the step.
            let example = try String(contentsOf: UWFProcess.packageRoot.appendingPathComponent("examples/payment-with-delay.json"), encoding: .utf8)
            #expect(try await send(server, .POST, "/api/v1/workflows", example).status == 201)
            let started = try await send(
                server,
                .POST,
                "/api/v1/execute",
                """
                {"workflow_name": "payment-with-delay", "input": {"amount": 1, "currency": "EUR", "payee": "X", "cooling_off_ms": 9223372036854775807}}
                """
            )
            #expect(started.status == 202)
            let runID = try #require(started.body["run_id"]?.stringValue)
            try await waitUntil("the run fails") {
                try await send(server, .GET, "/api/v1/executions/\(runID)").body["status"] == "FAILED"
            }
            let detail = try await send(server, .GET, "/api/v1/executions/\(runID)")
            let step = detail.body["steps"]?.arrayValue?.first { $0["id"] == "cooling_off" }
            #expect(step?["error"]?["code"] == "invalid_config")

            // Retire and delete: a version with runs can be retired, not erased; a retired version starts nothing.
            let workflowID = try #require(detail.body["workflow_id"]?.stringValue)
            #expect(try await send(server, .DELETE, "/api/v1/workflows/\(workflowID)").body["code"] == "definition_in_use")
            let retired = try await send(server, .POST, "/api/v1/workflows/\(workflowID)/retire")
            #expect(retired.body["status"] == "retired")
            let refusedStart = try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "payment-with-delay", "version": "1.0.0"}"#)
            #expect(refusedStart.status == 409)
            #expect(refusedStart.body["code"] == "workflow_retired")
            #expect(try await send(server, .POST, "/api/v1/workflows/\(workflowID)/activate").body["status"] == "active")
            let unused = try await send(
                server,
                .POST,
                "/api/v1/workflows",
                #"{"name": "unused", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
            )
            let unusedID = try #require(unused.body["id"]?.stringValue)
            #expect(try await send(server, .DELETE, "/api/v1/workflows/\(unusedID)").status == 204)
            #expect(try await send(server, .GET, "/api/v1/workflows/\(unusedID)").status == 404)
        }
    }

    /// The size bounds of definitions and run inputs, at their flags' edges.
    @Test func definitionAndInputSizesAreBounded() async throws {
        try await withServer(["--max-definition-bytes", "300", "--max-input-bytes", "100"]) { server in
            let small = #"{"name": "s", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
            #expect(try await send(server, .POST, "/api/v1/workflows", small).status == 201)
            let padding = String(repeating: "x", count: 400)
            let large = #"{"name": "l", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "echo", "config": {"p": "\#(padding)"}}]}}"#
            let refused = try await send(server, .POST, "/api/v1/workflows", large)
            #expect(refused.status == 422)
            #expect(refused.body["code"] == "definition_too_large")
            #expect(try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "s", "input": {"p": "short"}}"#).status == 202)
            let tooBig = try await send(server, .POST, "/api/v1/execute", #"{"workflow_name": "s", "input": {"p": "\#(padding)"}}"#)
            #expect(tooBig.status == 413)
            #expect(tooBig.body["code"] == "input_too_large")
        }
    }

    /// Finding 9: an idle connection, or one that never finishes its headers (slowloris), is closed.
    @Test func idleAndPartialConnectionsAreClosed() async throws {
        try await withServer(["--idle-timeout-seconds", "1"]) { server in
            let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
            // bash's /dev/tcp: send half a request head, then see whether the server hangs up within 5 s.
            let script = """
                exec 3<>/dev/tcp/127.0.0.1/\(port)
                printf 'GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: ' >&3
                start=$(date +%s%N)
                timeout 5 cat <&3 >/dev/null
                echo $(( ($(date +%s%N) - start) / 1000000 ))
                """
            let elapsed = Int(try await bash(script).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 99_999
            #expect(elapsed < 4_500, "the server closed the half-open connection after \(elapsed) ms")
        }
    }

    /// A body that starts and then stalls is answered 408 (`request_timeout`) once --request-timeout-seconds passes,
    /// even though the connection is not idle long enough for the idle timeout.
    @Test func aStalledBodyIsAnswered408() async throws {
        try await withServer(["--request-timeout-seconds", "1", "--idle-timeout-seconds", "30"]) { server in
            let port = try #require(server.baseURL.split(separator: ":").last.map(String.init))
            let script = """
                exec 3<>/dev/tcp/127.0.0.1/\(port)
                printf 'POST /api/v1/workflows HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer \(testAdminKey)\\r\\nContent-Type: application/json\\r\\nContent-Length: 100\\r\\n\\r\\n{"name"' >&3
                start=$(date +%s%N)
                timeout 6 head -c 400 <&3
                echo
                echo "elapsed=$(( ($(date +%s%N) - start) / 1000000 ))"
                """
            let output = try await bash(script)
            #expect(output.hasPrefix("HTTP/1.1 408"), "\(output)")
            #expect(output.contains("request_timeout"), "\(output)")
            let elapsed = Int(output.split(separator: "elapsed=").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 99_999
            #expect(elapsed < 5_000, "answered after \(elapsed) ms")
            // The server is still up for everyone else.
            #expect(try await send(server, .GET, "/health").status == 200)
        }
    }

    /// Runs a bash script (raw sockets through /dev/tcp) and returns what it printed.
    func bash(_ script: String) async throws -> String {
        try await offThePool { try Self.bashBlocking(script) }
    }

    static func bashBlocking(_ script: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return output
    }
}
