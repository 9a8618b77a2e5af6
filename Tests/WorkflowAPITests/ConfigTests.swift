import AsyncHTTPClient
import Foundation
import Testing
import WorkflowPrimitive
import WorkflowTestSupport

/// `uwf serve`'s configuration: a YAML file, `UWF_*` variables and flags, in that order of strength; every value checked
/// with a message naming where it came from; `uwf config check|print|reference`, run as the built binary.
@Suite struct ConfigTests {
    static func scratch() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func write(_ text: String, in directory: URL, name: String = "uwf.yaml") throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    /// `uwf config …` with only the given `UWF_*` variables (the test process's own are left out).
    static func config(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
        var clean = environment
        for (key, _) in ProcessInfo.processInfo.environment where key.hasPrefix("UWF_") || key == "DATABASE_URL" {
            clean[key] = environment[key] ?? ""
        }
        return try await UWFProcess.cli(["config"] + arguments, server: "http://127.0.0.1:1", environment: clean)
    }

    /// The line of `key` in a section of `uwf config print --effective`: its value and its source.
    static func line(_ output: String, section: String, key: String) -> String? {
        var inSection = false
        for line in output.split(separator: "\n") {
            if !line.hasPrefix(" ") { inSection = line == "\(section):" }
            if inSection, line.hasPrefix("  \(key): ") { return String(line.dropFirst(key.count + 4)) }
        }
        return nil
    }

    @Test func flagsBeatTheEnvironmentWhichBeatsTheFileWhichBeatsDefaults() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try Self.write(
            """
            api:
              port: 9191
              rate_limit_per_minute: 50
            database:
              url: postgres://uwf:hunter2@db.internal:5432/uwf
            executor:
              max_concurrent_steps: 8
              lease_seconds: 20
              egress_deny: ["10.0.0.0/8", "*.internal"]
            logging:
              format: json
            metrics:
              enabled: false
            """,
            in: directory
        )
        let printed = try await Self.config(
            ["print", "--effective", "--config", file, "--max-concurrent-steps", "3"],
            environment: ["UWF_MAX_CONCURRENT_STEPS": "16", "UWF_LEASE_SECONDS": "12", "UWF_HOST": "0.0.0.0"]
        )
        #expect(printed.status == 0, "\(printed.stderr)")
        let out = printed.stdout
        #expect(Self.line(out, section: "executor", key: "max_concurrent_steps") == "3  # flag")
        #expect(Self.line(out, section: "executor", key: "lease_seconds") == "12.0  # $UWF_LEASE_SECONDS")
        #expect(Self.line(out, section: "api", key: "host") == "\"0.0.0.0\"  # $UWF_HOST")
        #expect(Self.line(out, section: "api", key: "port") == "9191  # file")
        #expect(Self.line(out, section: "api", key: "rate_limit_per_minute") == "50  # file")
        #expect(Self.line(out, section: "api", key: "max_body_bytes") == "1048576  # default")
        #expect(Self.line(out, section: "executor", key: "egress_deny") == "[\"10.0.0.0/8\", \"*.internal\"]  # file")
        #expect(Self.line(out, section: "logging", key: "format") == "\"json\"  # file")
        #expect(Self.line(out, section: "metrics", key: "enabled") == "false  # file")
        #expect(!out.contains("hunter2"), "the database password is masked")
        #expect(Self.line(out, section: "database", key: "url")?.contains("uwf:%2A%2A%2A@db.internal") == true || out.contains("uwf:***@db.internal"))

        // Typed list values replace the file's rather than add to them.
        let typed = try await Self.config(["print", "--effective", "--config", file, "--egress-deny", "192.168.0.0/16"])
        #expect(Self.line(typed.stdout, section: "executor", key: "egress_deny") == "[\"192.168.0.0/16\"]  # flag")

        // What print shows is a configuration file itself: read back, it gives the same values.
        let saved = try Self.write(printed.stdout.replacingOccurrences(of: "uwf:***@", with: "uwf:pw@"), in: directory, name: "effective.yaml")
        let again = try await Self.config(["print", "--effective", "--config", saved])
        let strip = { (text: String) in text.split(separator: "\n").map { $0.split(separator: "#")[0] } }
        #expect(strip(again.stdout).count == strip(printed.stdout).count)
        #expect(try await Self.config(["check", "--config", saved]).status == 0)
    }

    @Test func badConfigurationIsRefusedNamingWhereItCameFrom() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(file: String?, environment: [String: String], flags: [String], message: String)] = [
            ("api:\n  prot: 1\n", [:], [], "unknown option api.prot"),
            ("apu:\n  port: 1\n", [:], [], "unknown option apu.port"),
            ("api: 3\n", [:], [], "'api' must be a section"),
            ("api:\n  port: eighty\n", [:], [], "api.port must be a whole number"),
            ("metrics:\n  enabled: maybe\n", [:], [], "metrics.enabled must be true or false"),
            ("executor:\n  egress_deny: 10.0.0.0/8\n", [:], [], "executor.egress_deny must be a list"),
            ("api:\n  port: [1, 2]\n", [:], [], "api.port must be a single value"),
            ("api:\n  port: 70000\n", [:], [], "--port must be 0-65535"),
            ("logging:\n  format: xml\n", [:], [], "--log-format must be text or json"),
            ("api: [\n", [:], [], "is not valid YAML"),
            (nil, ["UWF_LEASE_SECONDS": "soon"], [], "$UWF_LEASE_SECONDS must be a number"),
            (nil, ["UWF_PORT": "1e9"], [], "$UWF_PORT must be a whole number"),
            (nil, [:], ["--retention-days=-1"], "--retention-days must be from 0"),
        ]
        for (index, c) in cases.enumerated() {
            var flags = c.flags
            if let text = c.file { flags += ["--config", try Self.write(text, in: directory, name: "bad\(index).yaml")] }
            let result = try await Self.config(["check"] + flags, environment: c.environment)
            #expect(result.status == 1, "\(c.message): exit \(result.status)")
            #expect(result.stderr.contains(c.message), "wanted '\(c.message)', got: \(result.stderr)")
        }
        // A missing file, and a file too large to be a configuration.
        let missing = try await Self.config(["check", "--config", directory.appendingPathComponent("nope.yaml").path])
        #expect(missing.status == 1 && missing.stderr.contains("cannot read the configuration file"))
        let huge = try Self.write("# " + String(repeating: "x", count: 2 << 20) + "\n", in: directory, name: "huge.yaml")
        let big = try await Self.config(["check", "--config", huge])
        #expect(big.status == 1 && big.stderr.contains("larger than"))
        // uwf serve refuses to start on the same problems, before opening anything.
        let serve = try await UWFProcess.cli(["serve", "--config", try Self.write("api:\n  prot: 1\n", in: directory)], server: "")
        #expect(serve.status == 64 && serve.stderr.contains("unknown option api.prot"), "\(serve)")
    }

    @Test func theServerRunsFromAFileWithJSONLogs() async throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = try Self.write(
            """
            executor:
              max_concurrent_steps: 7
              node_id: configured-node
            logging:
              level: info
              format: json
            metrics:
              enabled: false
            """,
            in: directory
        )
        // UWFProcess passes --log-level notice: the flag wins over the file's info; set it back with a later flag.
        let server = try await UWFProcess.serve(
            dataDirectory: directory.appendingPathComponent("data"),
            extra: ["--config", file, "--log-level", "info"]
        )
        var request = HTTPClientRequest(url: server.baseURL + "/api/v1/workflows")
        request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
        request.headers.add(name: "X-Request-ID", value: "trace-me-123")
        let answered = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(answered.headers.first(name: "x-request-id") == "trace-me-123")
        var metrics = HTTPClientRequest(url: server.baseURL + "/metrics")
        metrics.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
        #expect(try await HTTPClient.shared.execute(metrics, timeout: .seconds(10)).status == .notFound, "metrics.enabled: false")
        #expect(server.terminate() == 0)

        let lines = server.log.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.count >= 2, "\(server.log)")
        var sawEngine = false
        for line in lines {
            let entry = try JSONValue.parse(String(line))
            #expect(entry["time"]?.stringValue?.hasSuffix("Z") == true && entry["level"] != nil && entry["message"] != nil, "\(line)")
            if entry["message"] == "engine started" {
                sawEngine = true
                #expect(entry["node"] == "configured-node" && entry["max_concurrent_steps"] == "7", "\(line)")
            }
        }
        #expect(sawEngine, "the file's log level (info) and node id were used: \(server.log)")
        #expect(!server.log.contains(testAdminKey), "no credential in the log")
    }

    @Test func theOperationsGuideListsEveryOption() async throws {
        let reference = try await Self.config(["reference"])
        #expect(reference.status == 0)
        let rows = reference.stdout.split(separator: "\n").filter { $0.hasPrefix("| `") }
        #expect(rows.count >= 50, "\(rows.count) options")
        let guide = try String(contentsOf: UWFProcess.packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        for row in rows { #expect(guide.contains(row), "docs/operations.md lacks or misstates: \(row)") }
    }
}
