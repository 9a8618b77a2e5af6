import Foundation

/// The workloads `uwf bench` can run.
public enum BenchScenario: String, CaseIterable, Sendable {
    /// One echo step per workflow.
    case echo1
    /// Three sequential transform steps (the DBOS peer benchmark's `wf3`).
    case seq3
    /// Ten parallel steps and a join.
    case fanout10
    /// Fixed-rate POST /api/v1/execute (seq3) at `--rate` for `--duration`, latency from each scheduled send time.
    case poc
    /// Status reads while seq3 runs execute.
    case readMix = "read-mix"
    /// A foreach over 100 items (20 at a time), each item one transform: measures items per second.
    case foreach100

    /// Items in each run's input (`foreach100`), else 0.
    public var itemsPerRun: Int { self == .foreach100 ? 100 : 0 }

    /// The definition the scenario runs, registered as `bench-<scenario>` 1.0.0.
    public var definition: String {
        switch self {
        case .echo1:
            return
                #"{"name": "bench-echo1", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "echo", "config": {"i": "${input.i}"}}]}}"#
        case .seq3, .poc, .readMix:
            return #"""
                {"name": "bench-seq3", "version": "1.0.0", "definition": {"steps": [
                  {"id": "s1", "type": "transform", "config": {"output": {"i": "${input.i}", "step": 1}}},
                  {"id": "s2", "type": "transform", "depends_on": ["s1"], "config": {"output": {"i": "${steps.s1.output.i}", "step": 2}}},
                  {"id": "s3", "type": "transform", "depends_on": ["s2"], "config": {"output": {"i": "${steps.s2.output.i}", "step": 3}}}
                ], "output": "${steps.s3.output}"}}
                """#
        case .foreach100:
            return #"""
                {"name": "bench-foreach100", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.items}", "max_concurrency": 20, "steps": [
                    {"id": "double", "type": "transform", "config": {"output": "${item * 2}"}}]}}
                ]}}
                """#
        case .fanout10:
            let branches = (1...10).map { #"{"id": "b\#($0)", "type": "echo", "config": {"i": "${input.i}", "branch": \#($0)}}"# }
            let join = #"{"id": "join", "type": "noop", "depends_on": [\#((1...10).map { "\"b\($0)\"" }.joined(separator: ", "))]}"#
            return #"{"name": "bench-fanout10", "version": "1.0.0", "definition": {"steps": [\#((branches + [join]).joined(separator: ", "))]}}"#
        }
    }
}

/// Percentiles of a set of latencies, in milliseconds.
public struct LatencySummary: Encodable, Sendable {
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public var max: Double
    public var count: Int

    public init(_ samplesMs: [Double]) {
        let sorted = samplesMs.sorted()
        func at(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            return (sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)] * 100).rounded() / 100
        }
        p50 = at(0.50)
        p95 = at(0.95)
        p99 = at(0.99)
        max = ((sorted.last ?? 0) * 100).rounded() / 100
        count = sorted.count
    }
}

/// What one benchmark run measured.
public struct BenchReport: Encodable, Sendable {
    public var scenario: String
    public var database: String
    public var build: String
    public var count: Int
    public var concurrency: Int
    public var rate: Double?
    public var durationSeconds: Double
    public var startsPerSecond: Double
    public var completedPerSecond: Double
    public var apiLatencyMs: LatencySummary
    public var startToFinishMs: LatencySummary
    public var readLatencyMs: LatencySummary?
    public var errors: Int
    public var failedRuns: Int
    public var serverCPUSecondsPer1000: Double?
    public var serverRSSMiB: Double?

    enum CodingKeys: String, CodingKey {
        case scenario, database, build, count, concurrency, rate, errors
        case durationSeconds = "duration_seconds"
        case startsPerSecond = "starts_per_second"
        case completedPerSecond = "completed_per_second"
        case apiLatencyMs = "api_latency_ms"
        case startToFinishMs = "start_to_finish_ms"
        case readLatencyMs = "read_latency_ms"
        case failedRuns = "failed_runs"
        case serverCPUSecondsPer1000 = "server_cpu_seconds_per_1000"
        case serverRSSMiB = "server_rss_mib"
    }
}
