import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WorkflowBench
import WorkflowPrimitive

/// `uwf bench`: drives a server over real HTTP and reports throughput and latency.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark a uwf server (by default a fresh `uwf serve` on embedded SQLite, started for the run)."
    )

    @Option(help: "Scenario: \(BenchScenario.allCases.map(\.rawValue).joined(separator: ", ")), schedules.") var scenario = "seq3"
    @Option(help: "Benchmark this running server instead of starting one.") var server: String?
    @Option(help: "PostgreSQL URL for the server this command starts (default: embedded SQLite in a temporary directory).")
    var database: String?
    @Option(help: "Workflows to start (closed-loop scenarios).") var count = 5000
    @Option(help: "Requests in flight at once (closed-loop scenarios).") var concurrency = 64
    @Option(help: "Starts per second (poc).") var rate = 1000.0
    @Option(help: "Seconds of load (poc, read-mix).") var duration = 10.0
    @Option(help: "Workflows run before measuring.") var warmup = 200
    @Option(help: "Extra arguments for the server this command starts, e.g. \"--max-concurrent-steps 128\".") var serverArgs = ""
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(help: "Turn the tenant's payload encryption on before the run (measures its cost).") var encryptPayloads = false
    @Option(help: "API key for --server (default $UWF_API_KEY); a server this command starts is asked with its bootstrap key.")
    var apiKey: String?

    func validate() throws {
        guard BenchScenario(rawValue: scenario) != nil || scenario == "schedules" else {
            throw ValidationError(
                "unknown scenario '\(scenario)'; one of \(BenchScenario.allCases.map(\.rawValue).joined(separator: ", ")), schedules"
            )
        }
        guard count > 0, concurrency > 0, rate > 0, duration > 0, warmup >= 0 else {
            throw ValidationError("counts, rate and duration must be positive")
        }
    }

    @Option(help: "Schedules due at once in the schedules scenario's burst.") var burst = 2000

    func run() async throws {
        if scenario == "schedules" {
            // In-process: what many schedules cost the leader (see ScheduleBench); --count is the number of schedules.
            try await ScheduleBench(count: count, burst: burst, json: json).run()
            return
        }
        let scenario = BenchScenario(rawValue: scenario)!
        var spawned: SpawnedServer?
        let baseURL: String
        if let server {
            baseURL = server
        } else {
            let started = try await SpawnedServer.start(
                executable: URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath(),
                database: database,
                extra: serverArgs.split(separator: " ").map(String.init)
            )
            spawned = started
            baseURL = started.baseURL
        }
        defer { spawned?.stop() }

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(concurrency, 8) * 2)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            // A running server is asked with --api-key, $UWF_API_KEY, or the bootstrap key in ./data/admin.key.
            let localKey = (try? String(contentsOfFile: "data/admin.key", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            let key = spawned.map(\.adminKey) ?? apiKey ?? ProcessInfo.processInfo.environment["UWF_API_KEY"] ?? localKey
            var driver = BenchDriver(http: http, baseURL: baseURL, itemsPerRun: scenario.itemsPerRun, apiKey: key)
            driver.encryptPayloads = encryptPayloads
            let report = try await driver.run(
                scenario: scenario,
                count: count,
                concurrency: concurrency,
                rate: rate,
                duration: duration,
                warmup: warmup,
                database: server == nil ? (database == nil ? "sqlite" : "postgres") : "external",
                serverPID: spawned?.pid
            )
            try await http.shutdown()
            print(json ? report.jsonText : report.table)
            if report.errors > 0 || report.failedRuns > 0 { throw ExitCode(1) }
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}

extension BenchReport {
    var table: String {
        func f(_ x: Double) -> String { String(format: "%.1f", x) }
        var rows: [[String]] = [
            ["scenario", scenario], ["database", database], ["build", build], ["workflows", String(count)],
            ["concurrency", String(concurrency)], ["duration", f(durationSeconds) + " s"],
            ["starts/s", f(startsPerSecond)], ["completed workflows/s", f(completedPerSecond)],
            ["API latency p50/p95/p99", "\(apiLatencyMs.p50) / \(apiLatencyMs.p95) / \(apiLatencyMs.p99) ms"],
            ["start-to-finish p50/p95/p99", "\(startToFinishMs.p50) / \(startToFinishMs.p95) / \(startToFinishMs.p99) ms"],
            ["errors / failed runs", "\(errors) / \(failedRuns)"],
        ]
        if let rate { rows.insert(["rate", f(rate) + "/s"], at: 5) }
        if let read = readLatencyMs { rows.append(["read latency p50/p95/p99", "\(read.p50) / \(read.p95) / \(read.p99) ms"]) }
        if let cpu = serverCPUSecondsPer1000 { rows.append(["server CPU per 1000 workflows", String(format: "%.3f s", cpu)]) }
        if let rss = serverRSSMiB { rows.append(["server RSS after", f(rss) + " MiB"]) }
        return TableOutput.table(["METRIC", "VALUE"], rows)
    }
}
