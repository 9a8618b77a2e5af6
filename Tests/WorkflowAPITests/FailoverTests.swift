import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

#if canImport(Glibc)
import Glibc
#endif

extension ClusterTests {
    /// The original plan's DR scenario "database primary failure: automatic promotion of a replica": a primary and a
    /// synchronous streaming standby (scripts/pg-failover.sh) behind the shipped HAProxy configuration, two nodes
    /// starting runs through it; the primary is killed (`-m immediate`) and the standby promoted under load. The nodes
    /// carry on against the new primary, and every start any client was told about completes.
    @Test(.enabled(if: ExternalTools.enabled("haproxy"))) func aPrimaryLostUnderLoadIsReplacedByItsStandby() async throws {
        let script = UWFProcess.packageRoot.appendingPathComponent("scripts/pg-failover.sh").path
        let started = try await offThePool { try runScript(script, ["start"]) }
        let exports = try #require(started.split(separator: "\n").first { $0.hasPrefix("export UWF_FAILOVER_DIR=") })
        var values: [String: String] = [:]
        for pair in exports.dropFirst("export ".count).split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        let pgDirectory = try #require(values["UWF_FAILOVER_DIR"])
        defer { _ = try? runScript(script, ["stop", pgDirectory]) }
        let primary = try #require(values["UWF_PRIMARY_PORT"])
        let standby = try #require(values["UWF_STANDBY_PORT"])

        let port = try freeLoopbackPort()
        var config = try DeploymentTests.text("haproxy/postgres-failover.cfg")
        config = config.replacingOccurrences(of: "bind :5432", with: "bind 127.0.0.1:\(port)")
            .replacingOccurrences(of: "pg-primary:5432", with: "127.0.0.1:\(primary)")
            .replacingOccurrences(of: "pg-standby:5432", with: "127.0.0.1:\(standby)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-failover-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let haproxy = try HAProxyProcess(config: config)
        defer { haproxy.stop() }

        let url = "postgres://postgres@127.0.0.1:\(port)/uwf?sslmode=disable"
        let arguments = ["--database", url, "--lease-seconds", "6", "--heartbeat-seconds", "2", "--poll-interval-ms", "200"]
        let ports = [Int.random(in: 30_000..<35_000), Int.random(in: 35_000..<40_000)]
        var nodes: [UWFProcess] = []
        for (i, nodePort) in ports.enumerated() {
            nodes.append(
                try await UWFProcess.serve(
                    dataDirectory: directory.appendingPathComponent("node\(i)"),
                    extra: arguments + ["--node-id", "node\(i)"],
                    port: nodePort
                )
            )
        }
        let flow =
            #"{"name": "failover", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "delay", "config": {"duration_ms": 100}}, {"id": "b", "type": "noop", "depends_on": ["a"]}]}}"#
        _ = try await WorkflowClient(baseURL: nodes[0].baseURL, apiKey: testAdminKey).registerWorkflow(Data(flow.utf8), yaml: false)

        let bases = nodes.map(\.baseURL)
        let clock = ContinuousClock()
        let begin = clock.now
        let stop = begin + .seconds(14)
        /// Starts a run with `key` through either node until one answers (the database may be changing hands); returns
        /// the run and when the request that was answered was sent.
        @Sendable func start(_ key: String, worker: Int) async -> (runID: String, at: ContinuousClock.Instant, answered: ContinuousClock.Instant)? {
            var attempt = 0
            while clock.now < stop + .seconds(60) {
                var request = HTTPClientRequest(url: bases[(worker + attempt) % bases.count] + "/api/v1/workflows/failover/execute")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Idempotency-Key", value: key)
                request.body = .bytes(ByteBuffer(string: #"{"input": {}}"#))
                let sent = clock.now
                if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(10)),
                    let body = try? await response.body.collect(upTo: 1 << 20),
                    response.status == .accepted || response.status == .ok,
                    let id = (try? JSONValue.parse(Data(body.readableBytesView)))?["run_id"]?.stringValue
                {
                    return (id, sent, clock.now)
                }
                attempt += 1
                try? await Task.sleep(for: .milliseconds(200))
            }
            return nil
        }
        let killedAt = Moment()
        let results = try await withThrowingTaskGroup(
            of: [(key: String, runID: String?, at: ContinuousClock.Instant, answered: ContinuousClock.Instant)].self
        ) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mine: [(key: String, runID: String?, at: ContinuousClock.Instant, answered: ContinuousClock.Instant)] = []
                    var n = 0
                    while clock.now < stop {
                        let key = "fo-\(worker)-\(n)"
                        let result = await start(key, worker: worker)
                        mine.append((key, result?.runID, result?.at ?? clock.now, result?.answered ?? clock.now))
                        n += 1
                    }
                    return mine
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(4))
                killedAt.set(clock.now)
                _ = try await offThePool { try runScript(script, ["kill-primary", pgDirectory]) }
                _ = try await offThePool { try runScript(script, ["promote", pgDirectory]) }
                return []
            }
            var all: [(key: String, runID: String?, at: ContinuousClock.Instant, answered: ContinuousClock.Instant)] = []
            for try await part in group { all += part }
            return all
        }
        let lost = results.filter { $0.runID == nil }.map(\.key)
        #expect(lost.isEmpty, "starts never answered: \(lost.prefix(10))")
        let accepted = results.compactMap(\.runID)
        #expect(Set(accepted).count == accepted.count, "each key started one run")
        let kill = try #require(killedAt.value)
        let after = results.filter { $0.runID != nil && $0.at > kill }.map(\.at).sorted()
        #expect(!after.isEmpty, "runs were started after the failover")
        let recovery = (after.first ?? kill) - kill
        // The outage as clients saw it: the longest time without any start answered, around the failover.
        let answers = results.filter { $0.runID != nil }.map(\.answered).sorted()
        var outage = Duration.zero
        for (previous, next) in zip(answers, answers.dropFirst()) where next > kill { outage = max(outage, next - previous) }
        print("failover drill: \(accepted.count) runs accepted; no start was answered for \(outage) around the failover")

        // A node may have died of the known PostgresNIO trap on a connection cut mid-stream: its supervisor would
        // start it again, and so does this test; any other death fails it.
        for (i, node) in nodes.enumerated() where !node.isRunning {
            #expect(node.log.contains("PostgresNIO/RowStreamStateMachine.swift"), "node\(i) died: \(node.log.suffix(1500))")
            nodes[i] = try await UWFProcess.serve(
                dataDirectory: directory.appendingPathComponent("node\(i)"),
                extra: arguments + ["--node-id", "node\(i)"],
                port: ports[i]
            )
        }
        defer { for node in nodes { _ = node.terminate() } }
        let client = WorkflowClient(baseURL: nodes[0].baseURL, apiKey: testAdminKey)
        var unfinished: [String] = []
        for id in accepted {
            let run = try await client.wait(for: id, timeout: .seconds(90), pollInterval: .milliseconds(100))
            if run.status != .completed { unfinished.append("\(id)=\(run.status)") }
        }
        #expect(unfinished.isEmpty, "acknowledged runs that did not complete: \(unfinished.prefix(10)) of \(accepted.count)")
        #expect(recovery < .seconds(30) && outage < .seconds(30), "the cluster answered again \(outage) after the primary was lost")
    }
}

/// An instant one task records and another reads.
final class Moment: @unchecked Sendable {
    private var instant: ContinuousClock.Instant?
    private let lock = NSLock()
    func set(_ value: ContinuousClock.Instant) { lock.withLock { instant = value } }
    var value: ContinuousClock.Instant? { lock.withLock { instant } }
}
