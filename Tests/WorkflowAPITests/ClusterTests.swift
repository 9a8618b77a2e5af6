/// A tiny JSON GET over AsyncHTTPClient's shared client.
import AsyncHTTPClient
import Foundation
import Hummingbird
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowStorePostgres
import WorkflowTestSupport

/// Several `uwf serve` processes of the built binary on one PostgreSQL.
@Suite(.serialized, .enabled(if: PostgresTestDatabase.enabled))
struct ClusterTests {
    /// Starts `count` nodes on a fresh schema, runs `body`, then stops them and drops the schema.
    func withCluster(
        count: Int,
        extra: [String] = [],
        _ body: ([UWFProcess], PostgresStoreConfiguration) async throws -> Void
    ) async throws {
        let configuration = try PostgresTestDatabase.configuration()
        let url = try #require(PostgresTestDatabase.url) + "&schema=\(configuration.schema)"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-cluster-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withPostgresStore(configuration: configuration) { _ in
            var nodes: [UWFProcess] = []
            for i in 0..<count {
                nodes.append(
                    try await UWFProcess.serve(
                        dataDirectory: directory.appendingPathComponent("node\(i)"),
                        extra: ["--database", url, "--node-id", "node\(i)"] + extra
                    )
                )
            }
            defer { for node in nodes { _ = node.terminate() } }
            try await body(nodes, configuration)
        }
    }

    func clusterNodes(_ node: UWFProcess) async throws -> JSONValue {
        var request = HTTPClientRequestShim(url: node.baseURL + "/api/v1/cluster/nodes")
        return try await request.get()
    }

    @Test func theClusterSurvivesANodesDeath() async throws {
        try await LocalHTTPServer.with({ router, server in
            router.post("/score") { _, _ in
                // Held until the victim is dead, so that it certainly dies holding work (a 50 ms answer sometimes let
                // it finish everything first, and then nothing was left to take over).
                while !server.isSet("open") { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(50))
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"score":7}"#))
                )
            }
        }) { remote in
            try await withCluster(count: 3, extra: ["--lease-seconds", "3", "--heartbeat-seconds", "1", "--poll-interval-ms", "200"]) { nodes, _ in
                let clients = nodes.map { WorkflowClient(baseURL: $0.baseURL, apiKey: testAdminKey) }
                _ = try await clients[0].registerWorkflow(
                    Data(
                        """
                        {"name": "cluster", "version": "1.0.0", "definition": {"steps": [
                          {"id": "start", "type": "echo", "config": {"i": "${input.i}"}},
                          {"id": "score", "type": "http_request", "depends_on": ["start"],
                           "config": {"url": "\(remote.baseURL)/score", "method": "POST", "body": {"i": "${input.i}"}},
                           "retry": {"max_attempts": 5, "initial_interval_ms": 100}},
                          {"id": "cool_off", "type": "delay", "depends_on": ["start"], "config": {"duration_ms": 1500}},
                          {"id": "check", "type": "transform", "depends_on": ["start"], "config": {"output": "${input.i * 2}"}},
                          {"id": "join", "type": "echo", "depends_on": ["score", "cool_off", "check"],
                           "config": {"score": "${steps.score.output.body.score}", "double": "${steps.check.output}"}}
                        ]}}
                        """.utf8
                    ),
                    yaml: false
                )

                var runIDs: [String] = []
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for (n, client) in clients.enumerated() {
                        group.addTask {
                            var ids: [String] = []
                            for i in stride(from: n, to: 500, by: clients.count) {
                                ids.append(try await client.start(workflow: "cluster", input: ["i": .number(Double(i))]).runId)
                            }
                            return ids
                        }
                    }
                    for try await ids in group { runIDs += ids }
                }
                #expect(runIDs.count == 500)

                // Kill node1 while it holds work.
                let victim = "node1"
                let deadline = ContinuousClock.now + .seconds(30)
                var held = 0
                while ContinuousClock.now < deadline {
                    let listing = try await clusterNodes(nodes[0])
                    held = Int(listing["nodes"]?.arrayValue?.first { $0["id"] == .string(victim) }?["held_tasks"]?.numberValue ?? 0)
                    if held > 0 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                nodes[1].kill9()
                remote.set("open")
                #expect(held > 0, "node1 must hold work when it dies")

                let survivor = clients[0]
                var takeovers = 0
                for id in runIDs {
                    let run = try await survivor.wait(for: id, timeout: .seconds(120), pollInterval: .milliseconds(50))
                    #expect(
                        run.status == .completed,
                        "run \(id) is \(run.status): \(run.error?.canonicalString() ?? "") \(run.steps.map { "\($0.id)=\($0.status) \($0.error?.canonicalString() ?? "")" })"
                    )
                    #expect(run.output?["join"]?["score"] == 7)
                    let history = try await survivor.history(id).items
                    for step in ["start", "score", "cool_off", "check", "join"] {
                        let successes = history.filter { $0.type == "step_succeeded" && $0.stepId == step }.count
                        #expect(successes == 1, "run \(id) step \(step) recorded \(successes) successes")
                    }
                    takeovers += history.filter { $0.data["taken_over_from"] == .string(victim) }.count
                }
                #expect(takeovers > 0, "the history shows the survivors taking over the dead node's work")
                let listing = try await clusterNodes(nodes[2])
                let dead = listing["nodes"]?.arrayValue?.first { $0["id"] == .string(victim) }
                #expect(dead?["alive"] == false)
            }
        }
    }

    @Test func anotherNodeTakesOverLeadershipWhenTheLeaderDies() async throws {
        let ttl = 2.0
        try await withCluster(count: 3, extra: ["--leader-ttl-seconds", "\(ttl)", "--lease-seconds", "3", "--heartbeat-seconds", "1"]) { nodes, _ in
            var leader: String?
            let electionDeadline = ContinuousClock.now + .seconds(15)
            while leader == nil, ContinuousClock.now < electionDeadline {
                leader = try await clusterNodes(nodes[0])["leader"]?.stringValue
                if leader == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let first = try #require(leader)
            let index = try #require(Int(first.dropFirst(4)))
            let killedAt = ContinuousClock.now
            nodes[index].kill9()
            let observer = nodes[(index + 1) % nodes.count]
            var next: String?
            while ContinuousClock.now - killedAt < .seconds(20) {
                if let current = try await clusterNodes(observer)["leader"]?.stringValue, current != first {
                    next = current
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let elapsed = ContinuousClock.now - killedAt
            #expect(next != nil, "a new leader is elected")
            // The lease expires after the TTL; a node notices at its next check (at most TTL/3 later).
            #expect(elapsed < .seconds(ttl + ttl / 3 + 3), "handover took \(elapsed)")
        }
    }

    /// The leader fires schedules; killed while they are due, the next leader carries on from the stored state, and
    /// every fire time of the whole period starts exactly one run (none lost in the handover, none twice).
    @Test func schedulesFireExactlyOnceAcrossALeaderFailover() async throws {
        try await withCluster(count: 3, extra: ["--leader-ttl-seconds", "2", "--lease-seconds", "3", "--heartbeat-seconds", "1"]) { nodes, _ in
            let admin = WorkflowClient(baseURL: nodes[0].baseURL, apiKey: testAdminKey)
            let tick = #"{"name": "tick", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
            _ = try await admin.registerWorkflow(Data(tick.utf8), yaml: false)
            let ids = ["s1", "s2", "s3"]
            for id in ids {
                _ = try await admin.createSchedule([
                    "id": .string(id), "workflow": "tick", "cron": "* * * * * *", "dialect": "seconds", "overlap": "allow_all",
                    "missed": "run_all", "max_catch_up_runs": 1000,
                ])
            }
            var leader: String?
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                leader = try await clusterNodes(nodes[0])["leader"]?.stringValue
                if leader != nil, try await admin.schedule("s1").fired >= 3 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let first = try #require(leader)
            let index = try #require(Int(first.dropFirst(4)))
            let killedAtMs = Int64(Date().timeIntervalSince1970 * 1000)
            nodes[index].kill9()
            let survivorNode = nodes[(index + 1) % nodes.count]
            let survivor = WorkflowClient(baseURL: survivorNode.baseURL, apiKey: testAdminKey)
            let firedAtKill = try await survivor.schedule("s1").fired
            // Fires go on under the new leader (the old one's lease lapses after two seconds).
            let resumeDeadline = ContinuousClock.now + .seconds(30)
            while try await survivor.schedule("s1").fired < firedAtKill + 6, ContinuousClock.now < resumeDeadline {
                try await Task.sleep(for: .milliseconds(200))
            }
            for id in ids { _ = try await survivor.setSchedulePaused(id, "pause", note: "end of test") }
            let next = try await clusterNodes(survivorNode)["leader"]?.stringValue
            #expect(next != nil && next != first, "a new leader: \(next ?? "none")")
            for id in ids {
                var times: [Int64] = []
                var runs: [String] = []
                var cursor: String?
                repeat {
                    let page = try await survivor.scheduleRuns(id, limit: 200, cursor: cursor)
                    times += page.items.map { ScheduleTime.parse($0.scheduledAt) ?? -1 }
                    runs += page.items.map(\.runID)
                    cursor = page.nextCursor
                } while cursor != nil
                times.sort()
                // Each schedule was fired by the new leader too (s1 was watched; the others were paused a moment
                // later, so their counts differ by a fire or so).
                #expect(times.count >= 3 && (times.last ?? 0) > killedAtMs + 2000, "\(id): \(times.count) fires, the last at \(times.last ?? 0)")
                #expect(Set(times).count == times.count && Set(runs).count == runs.count, "\(id): one run per fire time")
                let gaps = zip(times, times.dropFirst()).filter { $1 - $0 != 1000 }
                #expect(gaps.isEmpty, "\(id): every second from the first fire to the last has its run; gaps at \(gaps)")
                let info = try await survivor.schedule(id)
                #expect(info.fired == times.count && info.skippedMissed == 0, "\(id): \(info.fired) fired, \(info.skippedMissed) skipped")
                for runID in runs.prefix(3) {
                    #expect(try await survivor.wait(for: runID, timeout: .seconds(30)).status == .completed)
                }
            }
        }
    }

    /// A key revoked through one node is refused by every node within seconds (each caches a verification for two).
    @Test func aKeyRevokedOnOneNodeIsRefusedByEveryNode() async throws {
        try await withCluster(count: 3, extra: []) { nodes, _ in
            let admin = WorkflowClient(baseURL: nodes[0].baseURL, apiKey: testAdminKey)
            let created = try await admin.createAPIKey(CreateAPIKeyRequest(name: "short-lived", roles: ["viewer"]))
            let clients = nodes.map { WorkflowClient(baseURL: $0.baseURL, apiKey: created.key) }
            // Every node has verified (and cached) the key.
            for client in clients { _ = try await client.runs(limit: 1) }
            let revokedAt = ContinuousClock.now
            try await admin.revokeAPIKey(created.info.id)
            var refusedAfter: [Duration] = []
            for client in clients {
                while true {
                    do {
                        _ = try await client.runs(limit: 1)
                    } catch let error as WorkflowError where error.code == .unauthenticated {
                        refusedAfter.append(ContinuousClock.now - revokedAt)
                        break
                    }
                    guard ContinuousClock.now - revokedAt < .seconds(30) else { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(refusedAfter.count == 3, "every node refuses the revoked key")
            // Two seconds of cache plus request time; a generous bound, for a shared machine.
            #expect(refusedAfter.allSatisfy { $0 < .seconds(10) }, "refused after \(refusedAfter)")
            #expect(refusedAfter.first.map { $0 < .seconds(2) } == true, "at once on the node that revoked it: \(refusedAfter)")
        }
    }
}

struct HTTPClientRequestShim {
    var url: String
    mutating func get() async throws -> JSONValue {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONValue.parse(Data(body.readableBytesView))
    }
}
