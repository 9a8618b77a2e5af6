import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import WorkflowEngine
import WorkflowPrimitive

/// The load generator of `uwf bench`: real HTTP requests over keep-alive connections.
public struct BenchDriver: Sendable {
    public let http: HTTPClient
    public let baseURL: String
    /// Items each run's input carries (`foreach100`).
    public var itemsPerRun = 0
    /// Sent as `Authorization: Bearer`; nil against a server started with `--insecure-no-auth`.
    public var apiKey: String?
    /// Turn the tenant's payload encryption on before the run (to measure its cost).
    public var encryptPayloads = false

    public init(http: HTTPClient, baseURL: String, itemsPerRun: Int = 0, apiKey: String? = nil) {
        self.http = http
        self.baseURL = baseURL
        self.itemsPerRun = itemsPerRun
        self.apiKey = apiKey
    }

    private struct Sample: Sendable {
        var runID: String?
        var latencyMs: Double
    }

    public func run(
        scenario: BenchScenario,
        count: Int,
        concurrency: Int,
        rate: Double,
        duration: Double,
        warmup: Int,
        database: String,
        serverPID: Int32?
    ) async throws -> BenchReport {
        if encryptPayloads {
            let (status, answer) = try await send(.PUT, "/api/v1/tenant/settings", body: Data(#"{"encrypt_payloads": true}"#.utf8))
            guard status == 200 else { throw BenchError("turning payload encryption on failed: HTTP \(status) \(answer.canonicalString())") }
        }
        let (status, registered) = try await send(.POST, "/api/v1/workflows", body: Data(scenario.definition.utf8))
        guard status == 200 || status == 201, let workflowID = registered["id"]?.stringValue else {
            throw BenchError("registering the scenario failed: HTTP \(status) \(registered.canonicalString())")
        }
        if warmup > 0 {
            let samples = try await closedLoop(workflowID: workflowID, count: warmup, concurrency: concurrency)
            _ = try await waitForRuns(workflowID: workflowID, ids: Set(samples.compactMap(\.runID)))
        }

        let cpuBefore = serverPID.flatMap(ProcessStats.cpuSeconds)
        let loadStart = ContinuousClock.now
        var samples: [Sample]
        var reads: [Double]?
        switch scenario {
        case .echo1, .seq3, .fanout10, .foreach100:
            samples = try await closedLoop(workflowID: workflowID, count: count, concurrency: concurrency)
        case .poc:
            samples = try await openLoop(workflowID: workflowID, rate: rate, duration: duration)
        case .readMix:
            (samples, reads) = try await readMix(workflowID: workflowID, concurrency: concurrency, duration: duration)
        }
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        let ids = Set(samples.compactMap(\.runID))
        let runs = try await waitForRuns(workflowID: workflowID, ids: ids)
        let cpuAfter = serverPID.flatMap(ProcessStats.cpuSeconds)

        let created = runs.values.map(\.created)
        let completed = runs.values.compactMap(\.completed)
        let span = (completed.max() ?? Date()).timeIntervalSince(created.min() ?? Date())
        let finished = runs.values.filter { $0.status == "COMPLETED" }
        return BenchReport(
            scenario: scenario.rawValue,
            database: database,
            build: Self.buildMode,
            count: ids.count,
            concurrency: concurrency,
            rate: scenario == .poc ? rate : nil,
            durationSeconds: loadSeconds,
            startsPerSecond: Double(ids.count) / max(loadSeconds, 0.001),
            completedPerSecond: Double(finished.count) / max(span, 0.001),
            apiLatencyMs: LatencySummary(samples.map(\.latencyMs)),
            startToFinishMs: LatencySummary(finished.compactMap { run in run.completed.map { $0.timeIntervalSince(run.created) * 1000 } }),
            readLatencyMs: reads.map(LatencySummary.init),
            errors: samples.filter { $0.runID == nil }.count,
            failedRuns: runs.count - finished.count,
            serverCPUSecondsPer1000: zip(cpuBefore, cpuAfter).map { ($1 - $0) / Double(max(ids.count, 1)) * 1000 },
            serverRSSMiB: serverPID.flatMap(ProcessStats.rssMiB)
        )
    }

    static var buildMode: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    // MARK: load shapes

    /// `concurrency` clients, each starting workflows back to back until `count` have been sent.
    private func closedLoop(workflowID: String, count: Int, concurrency: Int) async throws -> [Sample] {
        let next = SharedCounter()
        return try await withThrowingTaskGroup(of: [Sample].self) { group in
            for _ in 0..<min(concurrency, count) {
                group.addTask {
                    var samples: [Sample] = []
                    while true {
                        let i = next.next()
                        if i >= count { return samples }
                        let began = ContinuousClock.now
                        let runID = await start(workflowID: workflowID, i: i)
                        samples.append(Sample(runID: runID, latencyMs: (ContinuousClock.now - began).seconds * 1000))
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// Starts at a fixed rate whatever the server does; latency counts from each request's scheduled time.
    private func openLoop(workflowID: String, rate: Double, duration: Double) async throws -> [Sample] {
        let total = Int(rate * duration)
        let origin = ContinuousClock.now
        return await withTaskGroup(of: Sample.self) { group in
            for i in 0..<total {
                let scheduled = origin + .nanoseconds(Int64(Double(i) / rate * 1e9))
                try? await Task.sleep(until: scheduled, clock: .continuous)
                group.addTask {
                    let runID = await start(workflowID: workflowID, i: i)
                    return Sample(runID: runID, latencyMs: (ContinuousClock.now - scheduled).seconds * 1000)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Half the clients start workflows, half read the status of runs already started, for `duration` seconds.
    private func readMix(workflowID: String, concurrency: Int, duration: Double) async throws -> ([Sample], [Double]) {
        let known = SharedIDs()
        let deadline = ContinuousClock.now + .milliseconds(Int64(duration * 1000))
        let writers = max(1, concurrency / 2)
        let counter = SharedCounter()
        return try await withThrowingTaskGroup(of: ([Sample], [Double]).self) { group in
            for _ in 0..<writers {
                group.addTask {
                    var samples: [Sample] = []
                    while ContinuousClock.now < deadline {
                        let began = ContinuousClock.now
                        let runID = await start(workflowID: workflowID, i: counter.next())
                        samples.append(Sample(runID: runID, latencyMs: (ContinuousClock.now - began).seconds * 1000))
                        if let runID { known.append(runID) }
                    }
                    return (samples, [])
                }
            }
            for _ in 0..<max(1, concurrency - writers) {
                group.addTask {
                    var latencies: [Double] = []
                    while ContinuousClock.now < deadline {
                        guard let id = known.random() else {
                            try await Task.sleep(for: .milliseconds(5))
                            continue
                        }
                        let began = ContinuousClock.now
                        let (status, _) = try await send(.GET, "/api/v1/executions/\(id)")
                        if status == 200 { latencies.append((ContinuousClock.now - began).seconds * 1000) }
                    }
                    return ([], latencies)
                }
            }
            return try await group.reduce(into: ([], [])) {
                $0.0 += $1.0
                $0.1 += $1.1
            }
        }
    }

    // MARK: requests

    private func start(workflowID: String, i: Int) async -> String? {
        let items = itemsPerRun > 0 ? #", "items": [\#((0..<itemsPerRun).map(String.init).joined(separator: ","))]"# : ""
        let body = Data(#"{"input": {"i": \#(i)\#(items)}}"#.utf8)
        guard let (status, answer) = try? await send(.POST, "/api/v1/workflows/\(workflowID)/execute", body: body), status == 202 else {
            return nil
        }
        return answer["run_id"]?.stringValue
    }

    private struct RunTimes {
        var status: String
        var created: Date
        var completed: Date?
    }

    /// Waits until none of the workflow's runs is pending or running, then reads the runs in `ids`.
    private func waitForRuns(workflowID: String, ids: Set<String>) async throws -> [String: RunTimes] {
        let deadline = ContinuousClock.now + .seconds(900)
        while ContinuousClock.now < deadline {
            let (_, running) = try await send(.GET, "/api/v1/executions?workflow_id=\(workflowID)&status=RUNNING&limit=1")
            let (_, pending) = try await send(.GET, "/api/v1/executions?workflow_id=\(workflowID)&status=PENDING&limit=1")
            if running["executions"]?.arrayValue?.isEmpty == true, pending["executions"]?.arrayValue?.isEmpty == true { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        var runs: [String: RunTimes] = [:]
        var cursor: String?
        repeat {
            let (_, page) = try await send(
                .GET,
                "/api/v1/executions?workflow_id=\(workflowID)&limit=500" + (cursor.map { "&cursor=\($0)" } ?? "")
            )
            for run in page["executions"]?.arrayValue ?? [] {
                guard let id = run["run_id"]?.stringValue, ids.contains(id), let created = Self.date(run["created_at"]) else { continue }
                runs[id] = RunTimes(status: run["status"]?.stringValue ?? "", created: created, completed: Self.date(run["completed_at"]))
            }
            cursor = page["next_cursor"]?.stringValue
        } while cursor != nil && runs.count < ids.count
        return runs
    }

    private static func date(_ value: JSONValue?) -> Date? {
        guard let text = value?.stringValue else { return nil }
        return try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> (Int, JSONValue) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.body = .bytes(ByteBuffer(bytes: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let value = (try? JSONValue.parse(Data(bytes.readableBytesView))) ?? .null
        return (Int(response.status.code), value)
    }
}

/// A counter shared by the load tasks.
public final class SharedCounter: Sendable {
    private let value = Atomic<Int>(0)
    public func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Run ids shared between writers and readers of `read-mix`.
public final class SharedIDs: Sendable {
    private let ids = Mutex<[String]>([])
    public func append(_ id: String) { ids.withLock { $0.append(id) } }
    public func random() -> String? { ids.withLock { $0.randomElement() } }
}

public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

private func zip(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b else { return nil }
    return (a, b)
}
