import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import Testing
import WorkflowPrimitive
import WorkflowTestSupport

/// What the original plan's clients and web pages need: names with spaces and other printable characters, its
/// paths, gzip for large answers, CORS for allowed origins.
@Suite struct CompatibilityTests {
    @Test func namesWithSpacesAndOtherScriptsRegisterRunListAndAreAddressable() async throws {
        try await withAPI { api in
            let names = ["Test Workflow", "Überweisung SEPA (eilig) #1", "送金 ワークフロー", "a.b_c-d+e=f?g&h%i"]
            for name in names {
                let body =
                    #"{"name": \#(JSONValue.string(name).canonicalString()), "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
                let created = try await api.call(.post, "/api/v1/workflows", body)
                #expect(created.status == .created, "\(name): \(created.json)")
                let path = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                let found = try await api.call(.get, "/api/v1/workflows/\(path)")
                #expect(found.status == .ok && found.json["name"] == .string(name), "\(name) by its encoded name: \(found.json)")
                let started = try await api.call(.post, "/api/v1/workflows/\(path)/execute", #"{"input": {}}"#)
                #expect(started.status == .accepted, "\(name): \(started.json)")
                let legacy = try await api.call(.post, "/api/workflows/run/\(path)", #"{"input": {}}"#)
                #expect(legacy.status == .accepted, "\(name) through the original path: \(legacy.json)")
                let run = try #require(started.json["run_id"]?.stringValue)
                try await waitUntil { try await api.call(.get, "/api/v1/executions/\(run)").json["status"] == "COMPLETED" }
                let id = try #require(found.json["id"]?.stringValue)
                let listed = try await api.call(.get, "/api/v1/executions?workflow_id=\(id)")
                #expect(listed.json["executions"]?.arrayValue?.count == 2, "\(name): runs listed by name: \(listed.json)")
            }
            let listed = try await api.call(.get, "/api/v1/workflows?limit=100")
            let listedNames = Set(listed.json["workflows"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
            #expect(listedNames.isSuperset(of: names))

            // Refused, with the pointer: what could not be addressed or displayed reliably.
            for bad in [" lead", "trail ", "a/b", "a\\b", "tab\there", "line\nbreak", "", String(repeating: "x", count: 129), "nul\u{0}"] {
                let body =
                    #"{"name": \#(JSONValue.string(bad).canonicalString()), "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
                let refused = try await api.call(.post, "/api/v1/workflows", body)
                #expect(refused.status == .unprocessableContent, "\(bad.debugDescription): \(refused.status)")
                #expect(refused.json["errors"]?.arrayValue?.first?["pointer"] == "/name", "\(bad.debugDescription): \(refused.json)")
            }
            let badEncoding = try await api.call(.get, "/api/v1/workflows/%E0%A4%A")
            #expect(
                badEncoding.status == .unprocessableContent && badEncoding.json["code"] == "invalid_request",
                "\(badEncoding.status) \(badEncoding.json)"
            )
        }
    }

    /// The README's block of the original plan's commands, pasted into bash against the built server (with curl).
    @Test(.enabled(if: ExternalTools.enabled("curl"))) func theReadmeCommandsForTheOriginalPlanWork() async throws {
        let readme = try String(contentsOf: UWFProcess.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- poc-commands"))
        let rest = readme[marker.upperBound...]
        let start = try #require(rest.range(of: "```bash\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let block = String(rest[start.upperBound..<end.lowerBound])

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-poc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory)
        defer { _ = server.terminate() }
        // Earlier README steps leave runs behind; a few here make the list larger than 1 KiB.
        for _ in 0..<4 {
            var request = HTTPClientRequest(url: server.baseURL + "/api/v1/workflows")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(
                ByteBuffer(string: #"{"name": "warmup", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#)
            )
            _ = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            var run = HTTPClientRequest(url: server.baseURL + "/api/v1/workflows/warmup/execute")
            run.method = .POST
            run.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
            run.headers.add(name: "Content-Type", value: "application/json")
            run.body = .bytes(ByteBuffer(string: #"{"input": {}}"#))
            _ = try await HTTPClient.shared.execute(run, timeout: .seconds(10))
        }
        let port = try #require(URL(string: server.baseURL)?.port)
        let script = "set -e\nKEY=\(testAdminKey)\n" + block.replacingOccurrences(of: "localhost:8080", with: "127.0.0.1:\(port)")
        let result = try await ExternalTools.run("bash", ["-c", script])
        #expect(result.status == 0, "\(result.output)")
        let out = result.output
        #expect(out.contains(#""name":"Test Workflow""#), "registered: \(out)")
        #expect(out.contains(#""status":"COMPLETED""#) && out.contains(#""workflow_name":"Test Workflow""#), "ran: \(out)")
        #expect(out.lowercased().contains("content-encoding: gzip"), "compressed: \(out)")
    }

    @Test func largeAnswersAreGzippedForClientsThatAsk() async throws {
        try await withAPI { api in
            for index in 0..<12 {
                let body =
                    #"{"name": "wf-\#(index)", "version": "1.0.0", "description": "\#(String(repeating: "d", count: 100))", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
                #expect(try await api.call(.post, "/api/v1/workflows", body).status == .created)
            }
            let plain = try await api.raw(.get, "/api/v1/workflows?limit=100", headers: [:])
            #expect(plain.headers[.contentEncoding] == nil && plain.body.count > 1024)
            let zipped = try await api.raw(.get, "/api/v1/workflows?limit=100", headers: ["Accept-Encoding": "br;q=1, gzip;q=0.5"])
            #expect(zipped.headers[.contentEncoding] == "gzip")
            #expect(zipped.headers[values: .vary].joined(separator: ",").contains("Accept-Encoding"))
            #expect(zipped.body.count < plain.body.count / 2, "\(zipped.body.count) of \(plain.body.count)")
            #expect(zipped.body.starts(with: [0x1f, 0x8b]), "a gzip stream")
            let refused = try await api.raw(.get, "/api/v1/workflows?limit=100", headers: ["Accept-Encoding": "gzip;q=0"])
            #expect(refused.headers[.contentEncoding] == nil, "q=0 means not acceptable")
            let small = try await api.raw(.get, "/health", headers: ["Accept-Encoding": "gzip"])
            #expect(small.headers[.contentEncoding] == nil, "small answers are sent as they are")
            // An independent decoder reads it back to the same bytes.
            if ExternalTools.enabled("python3") {
                let decoded = try await ExternalTools.run(
                    "python3",
                    ["-c", "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"],
                    input: Data(zipped.body)
                )
                #expect(decoded.status == 0 && Data(decoded.output.utf8) == Data(plain.body), "python's gzip reads the same document")
            }
        }
    }

    /// Browsers on the origins the operator allows may call the API; others get no CORS headers (the browser then
    /// refuses to show them the answer). Off unless configured.
    @Test func corsIsOffByDefaultAndAllowsOnlyConfiguredOrigins() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-cors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let console = "https://console.bank.example"
        func send(_ base: String, _ method: HTTPMethod, _ path: String, _ headers: [String: String]) async throws -> HTTPClientResponse {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            return try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        }
        let server = try await UWFProcess.serve(dataDirectory: directory, extra: ["--cors-origin", console])
        let preflight = try await send(
            server.baseURL,
            .OPTIONS,
            "/api/v1/execute",
            ["Origin": console, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"]
        )
        #expect(preflight.status == .noContent, "a preflight carries no credentials and is answered")
        #expect(preflight.headers.first(name: "access-control-allow-origin") == console)
        #expect(preflight.headers.first(name: "access-control-allow-headers")?.contains("Authorization") == true)
        #expect(preflight.headers.first(name: "access-control-allow-credentials") == nil, "bearer tokens, never cookies")
        let read = try await send(server.baseURL, .GET, "/api/v1/workflows", ["Origin": console, "Authorization": "Bearer \(testAdminKey)"])
        #expect(read.status == .ok && read.headers.first(name: "access-control-allow-origin") == console)
        #expect(read.headers.first(name: "access-control-expose-headers")?.contains("X-Request-ID") == true)
        let stranger = try await send(
            server.baseURL,
            .GET,
            "/api/v1/workflows",
            ["Origin": "https://evil.example", "Authorization": "Bearer \(testAdminKey)"]
        )
        #expect(stranger.headers.first(name: "access-control-allow-origin") == nil)
        let strangerPreflight = try await send(
            server.baseURL,
            .OPTIONS,
            "/api/v1/execute",
            ["Origin": "https://evil.example", "Access-Control-Request-Method": "POST"]
        )
        #expect(strangerPreflight.headers.first(name: "access-control-allow-origin") == nil)
        #expect(server.terminate() == 0)

        let plain = try await UWFProcess.serve(dataDirectory: directory)
        defer { _ = plain.terminate() }
        let off = try await send(plain.baseURL, .GET, "/api/v1/workflows", ["Origin": console, "Authorization": "Bearer \(testAdminKey)"])
        #expect(off.status == .ok && off.headers.first(name: "access-control-allow-origin") == nil, "off by default")
        let bad = try await UWFProcess.cli(["config", "check", "--cors-origin", "https://console.bank.example/path"], server: "")
        #expect(bad.status == 1 && bad.stderr.contains("--cors-origin"), "\(bad)")
    }
}
