import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport
import WorkflowWire

/// `/metrics` of the built binary: who may scrape it, what it counts, and that Prometheus' own linter accepts it.
@Suite struct MetricsTests {
    /// One sample of the text format.
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Reads the samples of a scrape (labels written by the server: no commas or quotes inside values here).
    static func samples(_ text: String) -> [Sample] {
        text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                return nil
            }
            let series = line[..<space]
            guard let brace = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            for pair in series[series.index(after: brace)..<series.index(before: series.endIndex)].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return Sample(name: String(series[..<brace]), labels: labels, value: value)
        }
    }

    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { s in s.name == name && labels.allSatisfy { s.labels[$0.key] == $0.value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    static func scrape(_ base: String, key: String?, method: HTTPMethod = .GET) async throws -> (status: UInt, type: String, body: String) {
        var request = HTTPClientRequest(url: base + "/metrics")
        request.method = method
        if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (response.status.code, response.headers.first(name: "content-type") ?? "", String(buffer: body))
    }

    @Test(.enabled(if: ExternalTools.enabled("promtool"))) func metricsCountTheWorkAndPassPromtool() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-metrics-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory)
        defer { _ = server.terminate() }
        let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
        let metered = #"{"name": "metered", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
        let boom = #"{"name": "boom", "version": "1.0.0", "definition": {"steps": [{"id": "x", "type": "fail", "config": {"message": "no"}}]}}"#
        _ = try await client.registerWorkflow(Data(metered.utf8), yaml: false)
        _ = try await client.registerWorkflow(Data(boom.utf8), yaml: false)
        var runIDs: [String] = []
        for _ in 0..<3 { runIDs.append(try await client.start(workflow: "metered").runId) }
        let failing = try await client.start(workflow: "boom").runId
        runIDs.append(failing)
        for id in runIDs { _ = try await client.wait(for: id, timeout: .seconds(30)) }

        let monitor = try await client.createAPIKey(CreateAPIKeyRequest(name: "prometheus", roles: ["monitor"])).key
        let viewer = try await client.createAPIKey(CreateAPIKeyRequest(name: "looker", roles: ["viewer"])).key
        #expect(try await Self.scrape(server.baseURL, key: nil).status == 401, "metrics need credentials")
        #expect(try await Self.scrape(server.baseURL, key: viewer).status == 403, "a viewer may not scrape")
        // A method outside the usual few is counted as "other" (the label set stays bounded).
        _ = try await Self.scrape(server.baseURL, key: monitor, method: .RAW(value: "PROPFIND"))

        let scraped = try await Self.scrape(server.baseURL, key: monitor)
        #expect(scraped.status == 200)
        #expect(scraped.type.hasPrefix("text/plain; version=0.0.4"))
        let text = scraped.body
        let samples = Self.samples(text)
        #expect(Self.value(samples, "uwf_runs_started_total", ["workflow": "metered"]) == 3, "\(text)")
        #expect(Self.value(samples, "uwf_runs_finished_total", ["workflow": "metered", "status": "completed"]) == 3)
        #expect(Self.value(samples, "uwf_runs_finished_total", ["workflow": "boom", "status": "failed"]) == 1)
        #expect(Self.value(samples, "uwf_run_duration_seconds_count", ["workflow": "metered", "status": "completed"]) == 3)
        #expect(Self.value(samples, "uwf_step_attempts_total", ["type": "noop", "outcome": "succeeded"]) == 3)
        #expect((Self.value(samples, "uwf_step_attempts_total", ["type": "fail", "outcome": "failed"]) ?? 0) >= 1)
        #expect(Self.value(samples, "uwf_http_requests_total", ["method": "POST", "route": "/api/v1/workflows", "status": "201"]) == 2)
        let routes = Set(samples.filter { $0.name == "uwf_http_requests_total" }.compactMap { $0.labels["route"] })
        #expect(routes.contains { $0.contains("{run_id}") }, "routes are templates, not paths: \(routes)")
        #expect(Self.value(samples, "uwf_http_requests_total", ["route": "/metrics", "status": "401"]) == 1)
        #expect(Self.value(samples, "uwf_http_requests_total", ["method": "other"]) == 1)
        #expect(!text.contains("PROPFIND"))
        for id in runIDs { #expect(!text.contains(id), "a run id is never a label") }
        #expect(Self.value(samples, "uwf_leader") == 1, "a lone node leads")
        #expect(Self.value(samples, "uwf_ready_tasks") == 0)
        #expect(Self.value(samples, "uwf_oldest_ready_task_age_seconds") == 0)
        #expect(Self.value(samples, "uwf_step_executions_capacity") != nil)
        #expect(Self.value(samples, "uwf_build_info") == 1)
        #expect(Self.value(samples, "uwf_lease_takeovers_total") == 0)

        // Prometheus' own parser and linter: names, types, units, help.
        let check = try await ExternalTools.run("promtool", ["check", "metrics"], input: Data(text.utf8))
        #expect(check.status == 0, "promtool check metrics: \(check.output)")

        // What the shipped alerts and dashboard query exists (a renamed metric would silence an alert for ever).
        let exported = Set(samples.map { $0.name })
        for file in ["deploy/prometheus/uwf-alerts.yml", "deploy/grafana/uwf-dashboard.json"] {
            let content = try String(contentsOf: UWFProcess.packageRoot.appendingPathComponent(file), encoding: .utf8)
            let used = Set(content.matches(of: /uwf_[a-z_]+/).map { String($0.output) })
            #expect(!used.isEmpty)
            for name in used.sorted() {
                #expect(exported.contains(name), "\(file) uses \(name), which /metrics does not export")
            }
        }
    }

    /// The alert rules parse and fire when they should (`promtool test rules`), the scrape configuration is valid, and
    /// every query of the Grafana dashboard is valid PromQL.
    @Test(.enabled(if: ExternalTools.enabled("promtool"))) func alertRulesAndDashboardPassPromtool() async throws {
        let deploy = UWFProcess.packageRoot.appendingPathComponent("deploy")
        let rules = deploy.appendingPathComponent("prometheus/uwf-alerts.yml").path
        let checked = try await ExternalTools.run("promtool", ["check", "rules", rules])
        #expect(checked.status == 0 && checked.output.contains("SUCCESS: 10 rules found"), "\(checked.output)")
        let tested = try await ExternalTools.run("promtool", ["test", "rules", deploy.appendingPathComponent("prometheus/uwf-alerts.test.yml").path])
        #expect(tested.status == 0, "\(tested.output)")

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-promtool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        for name in ["prometheus.yml", "uwf-alerts.yml"] {
            try FileManager.default.copyItem(
                at: deploy.appendingPathComponent("prometheus/\(name)"),
                to: scratch.appendingPathComponent(name)
            )
        }
        try Data("uwf_monitor_key".utf8).write(to: scratch.appendingPathComponent("monitor.key"))
        let config = try await ExternalTools.run("promtool", ["check", "config", scratch.appendingPathComponent("prometheus.yml").path])
        #expect(config.status == 0, "\(config.output)")

        // The dashboard's queries, with Grafana's variables filled in, as recording rules: promtool parses each.
        let dashboard = try JSONValue.parse(Data(contentsOf: deploy.appendingPathComponent("grafana/uwf-dashboard.json")))
        var expressions: [String] = []
        for panel in dashboard["panels"]?.arrayValue ?? [] {
            for target in panel["targets"]?.arrayValue ?? [] {
                if let expr = target["expr"]?.stringValue { expressions.append(expr) }
            }
        }
        #expect(expressions.count >= 15, "the dashboard has its panels: \(expressions.count) queries")
        var recording = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, expr) in expressions.enumerated() {
            let filled = expr.replacingOccurrences(of: "$__rate_interval", with: "1m").replacingOccurrences(of: "$instance", with: ".*")
            let quoted = filled.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            recording += "      - record: dashboard:query\(index)\n        expr: \"\(quoted)\"\n"
        }
        let recordingFile = scratch.appendingPathComponent("dashboard-queries.yml")
        try Data(recording.utf8).write(to: recordingFile)
        let queries = try await ExternalTools.run("promtool", ["check", "rules", recordingFile.path])
        #expect(queries.status == 0, "\(queries.output)\n\(recording)")
    }
}
