import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOSSL
import Testing
import WorkflowClient
import WorkflowEngine
import WorkflowPrimitive
import WorkflowTestSupport

/// A webhook endpoint run by `Tests/Reference/webhook_receiver.py`, which verifies every request with the
/// `standardwebhooks` package (the specification's reference library) and logs it.
final class WebhookReceiver: @unchecked Sendable {
    let process: Process
    let port: Int
    let log: URL

    /// Starts a receiver; the blocking part (starting the process, reading its first line) on a thread of its own.
    static func start(secrets: [String]) async throws -> WebhookReceiver {
        try await offThePool { try WebhookReceiver(script: "webhook_receiver.py", arguments: secrets) }
    }

    /// A local SMTP server (aiosmtpd) that logs each message it accepts.
    static func smtpSink(_ arguments: [String] = []) async throws -> WebhookReceiver {
        try await offThePool { try WebhookReceiver(script: "smtp_sink.py", arguments: arguments) }
    }

    private init(script name: String, arguments: [String]) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-webhooks-\(UUID().uuidString).jsonl")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let script = UWFProcess.packageRoot.appendingPathComponent("Tests/Reference/\(name)")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, log.path] + arguments
        let out = Pipe()
        process.standardOutput = out
        // Not the test's own stderr: a helper outliving a crashed test must not hold `swift test`'s pipe open.
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last ?? "") else {
            process.terminate()
            throw WorkflowError(.internalError, "the webhook receiver did not start (is the standardwebhooks package installed?): \(text)")
        }
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    var entries: [JSONValue] {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(Data($0.utf8)) }
    }

    /// Polls until `check` holds of the log (or a deadline passes); returns the log as last read.
    func waitFor(timeout: Duration = .seconds(20), _ check: ([JSONValue]) -> Bool) async throws -> [JSONValue] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let current = entries
            if check(current) || ContinuousClock.now > deadline { return current }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the receiver without waiting for it (a `defer` cannot await). SIGKILL: children of a process that runs
    /// a ServiceGroup inherit SIGTERM ignored.
    func stop() {
        kill(process.processIdentifier, SIGKILL)
        try? FileManager.default.removeItem(at: log)
    }
}

@Suite(.enabled(if: PythonTestTools.enabled)) struct WebhookTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0 * 7 % 256) }).base64EncodedString()
    static let tick = #"{"name": "tick", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#
    static let failing = #"{"name": "boom", "version": "1.0.0", "definition": {"steps": [{"id": "x", "type": "fail", "config": {"message": "no"}}]}}"#

    static func start(_ api: any TestClientProtocol, _ workflow: String) async throws -> String {
        let started = try await api.call(.post, "/api/v1/workflows/\(workflow)/execute", #"{"input": {}}"#)
        return try #require(started.json["run_id"]?.stringValue, "\(started.json)")
    }

    @Test(arguments: APIDriver.all) func deliveriesAreSignedAsTheStandardSaysAndLogged(_ driver: APIDriver) async throws {
        let receiver = try await WebhookReceiver.start(secrets: [Self.secret])
        defer { receiver.stop() }
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            let body =
                #"{"id": "ops", "url": "\#(receiver.url("/ok"))", "event_types": ["run.started", "run.completed"], "secret": "\#(Self.secret)"}"#
            let created = try await api.call(.post, "/api/v1/webhooks", body)
            #expect(created.status == .created && created.json["secret"]?.stringValue == Self.secret, "\(created.json)")
            #expect(try await api.call(.post, "/api/v1/webhooks", body).json["code"] == "webhook_exists")
            #expect(try await api.call(.get, "/api/v1/webhooks/ops").json.canonicalString().contains("whsec_") == false, "never shown again")
            var runs: [String] = []
            for _ in 0..<3 { runs.append(try await Self.start(api, "tick")) }
            for run in runs { _ = try await api.waitForRun(run) }
            let log = try await receiver.waitFor { $0.count >= 6 }
            #expect(log.count == 6, "\(log.count) requests")
            #expect(log.allSatisfy { $0["verified"] == [true] }, "the standardwebhooks library verifies every signature")
            #expect(log.allSatisfy { $0["id"] == $0["event"]?["event_id"] }, "webhook-id is the event id")
            #expect(Set(log.compactMap { $0["id"]?.stringValue }).count == 6, "one id per event")
            for run in runs {
                let types = log.filter { $0["event"]?["payload"]?["run_id"]?.stringValue == run }.compactMap { $0["type"]?.stringValue }.sorted()
                #expect(types == ["run.completed", "run.started"], "\(run): \(types)")
            }
            let event = try #require(log.first?["event"])
            for key in ["event_id", "event_type", "timestamp", "correlation_id", "payload", "metadata"] {
                #expect(event[key] != nil, "the event schema has \(key)")
            }
            // Our own check of the same signature, byte for byte.
            let first = try #require(log.first)
            let ours = EventRelay.signature(
                id: first["id"]?.stringValue ?? "",
                timestamp: Int64(first["timestamp"]?.stringValue ?? "") ?? 0,
                body: first["event"].map { $0.canonicalString() } ?? "",
                secrets: [Self.secret]
            )
            #expect(first["signature"]?.stringValue == ours)

            // The endpoint logs a request before it answers: the relay records the answer a moment later.
            var deliveries: [JSONValue] = []
            for _ in 0..<200 {
                deliveries = try await api.call(.get, "/api/v1/webhooks/ops/deliveries").json["deliveries"]?.arrayValue ?? []
                if deliveries.count == 6 && deliveries.allSatisfy({ $0["status"] == "succeeded" }) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(deliveries.count == 6 && deliveries.allSatisfy { $0["status"] == "succeeded" && $0["attempts"] == 1 })
            let one = try await api.call(.get, "/api/v1/webhook-deliveries/\(deliveries[0]["id"]?.stringValue ?? "")").json
            let attempt = one["attempt_log"]?.arrayValue?.first
            #expect(attempt?["status_code"] == 200 && attempt?["response_excerpt"] == "ok" && attempt?["latency_ms"]?.numberValue != nil, "\(one)")

            // Rotation: both secrets sign until the grace period ends; the new one is verified by a second receiver.
            let rotated = try await api.call(.post, "/api/v1/webhooks/ops/rotate-secret", #"{"grace_seconds": 3600}"#)
            let newSecret = try #require(rotated.json["secret"]?.stringValue)
            #expect(newSecret != Self.secret && rotated.json["webhook"]?["previous_secret_expires_at"]?.stringValue != nil)
            let second = try await WebhookReceiver.start(secrets: [Self.secret, newSecret])
            defer { second.stop() }
            #expect(try await api.call(.put, "/api/v1/webhooks/ops", #"{"url": "\#(second.url("/ok"))"}"#).status == .ok)
            _ = try await api.waitForRun(try await Self.start(api, "tick"))
            let both = try await second.waitFor { $0.count >= 2 }
            #expect(both.count == 2 && both.allSatisfy { $0["verified"] == [true, true] }, "\(both)")
            #expect(both.allSatisfy { ($0["signature"]?.stringValue ?? "").split(separator: " ").count == 2 })

            let audit = try await api.call(.get, "/api/v1/audit?target=webhook:ops&order=chain").json["entries"]?.arrayValue?
                .compactMap { $0["action"]?.stringValue }
            #expect(audit == ["webhook.create", "webhook.rotate_secret", "webhook.update"], "\(audit ?? [])")
        }
    }

    @Test(arguments: APIDriver.all) func retriesHonourRetryAfterAndGoneDisables(_ driver: APIDriver) async throws {
        let receiver = try await WebhookReceiver.start(secrets: [Self.secret])
        defer { receiver.stop() }
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            for (id, path) in [("flaky", "/flaky/2"), ("gone", "/gone"), ("moved", "/redirect")] {
                let body = #"{"id": "\#(id)", "url": "\#(receiver.url(path))", "event_types": ["run.completed"], "secret": "\#(Self.secret)"}"#
                #expect(try await api.call(.post, "/api/v1/webhooks", body).status == .created)
            }
            let run = try await Self.start(api, "tick")
            _ = try await api.waitForRun(run)
            let log = try await receiver.waitFor { log in
                log.filter { $0["path"] == "/flaky/2" }.count >= 3 && log.filter { $0["path"] == "/redirect" }.count >= 3
            }
            // 503 with Retry-After: 1, twice, then 200: the relay waited a second (its own schedule says 200 ms).
            let flaky = log.filter { $0["path"] == "/flaky/2" }
            #expect(flaky.map { $0["status"] } == [503, 503, 200] && Set(flaky.compactMap { $0["id"]?.stringValue }).count == 1, "\(flaky)")
            let times = flaky.compactMap { $0["at"]?.numberValue }
            #expect(zip(times, times.dropFirst()).allSatisfy { $1 - $0 >= 0.95 }, "Retry-After honoured: \(times)")
            // 410 Gone: one attempt, and the subscription is off.
            #expect(log.filter { $0["path"] == "/gone" }.count == 1)
            let gone = try await api.call(.get, "/api/v1/webhooks/gone").json
            #expect(gone["status"] == "disabled" && gone["disabled_reason"]?.stringValue?.contains("410") == true, "\(gone)")
            // A redirect is not followed and is not a success: three attempts, then a dead letter.
            #expect(log.filter { $0["path"] == "/ok" }.isEmpty, "the redirect was not followed")
            let moved = try await Self.waitForDelivery(api, "moved") { $0["status"] == "failed" }
            #expect(moved["status"] == "failed" && moved["attempts"] == 3 && moved["last_status_code"] == 302, "\(moved)")
            let failed = try await api.call(.get, "/api/v1/webhook-deliveries?status=failed").json["deliveries"]?.arrayValue ?? []
            #expect(Set(failed.compactMap { $0["webhook_id"]?.stringValue }) == ["gone", "moved"])

            // Redelivery of the dead letters of one subscription: attempted again, with the same webhook-id.
            let redelivered = try await api.call(.post, "/api/v1/webhook-deliveries/redeliver", #"{"webhook_id": "moved"}"#)
            #expect(redelivered.json["redelivered"] == 1)
            let again = try await receiver.waitFor { $0.filter { $0["path"] == "/redirect" }.count >= 4 }
            let ids = Set(again.filter { $0["path"] == "/redirect" }.compactMap { $0["id"]?.stringValue })
            #expect(ids.count == 1, "a redelivery keeps the webhook-id")
            #expect(try await api.call(.post, "/api/v1/webhook-deliveries/redeliver", #"{}"#).status == .unprocessableContent)
        }
    }

    @Test func subscriptionsAreBoundedPerTenant() async throws {
        try await withAPI { api in
            for i in 0..<25 {
                let created = try await api.call(.post, "/api/v1/webhooks", #"{"id": "w\#(i)", "url": "http://127.0.0.1:9/x"}"#)
                #expect(created.status == .created, "\(i): \(created.json)")
            }
            let refused = try await api.call(.post, "/api/v1/webhooks", #"{"id": "w25", "url": "http://127.0.0.1:9/x"}"#)
            #expect(refused.status == .conflict, "\(refused.json)")
            #expect(refused.json["code"] == "quota_exceeded" && refused.json["detail"]?.stringValue?.contains("at most 25") == true)
            #expect(try await api.call(.delete, "/api/v1/webhooks/w0").status == .noContent)
            #expect(try await api.call(.post, "/api/v1/webhooks", #"{"id": "w25", "url": "http://127.0.0.1:9/x"}"#).status == .created)
        }
    }

    static func waitForDelivery(_ api: any TestClientProtocol, _ webhook: String, _ check: (JSONValue) -> Bool) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let delivery = try await api.call(.get, "/api/v1/webhooks/\(webhook)/deliveries").json["deliveries"]?.arrayValue?.first ?? .null
            if check(delivery) || ContinuousClock.now > deadline { return delivery }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test(arguments: APIDriver.all) func theEventsCoverRunsStepsApprovalsDefinitionsAndSchedules(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            let head = try await api.call(.get, "/api/v1/events").json["head"]?.numberValue ?? 0
            #expect(try await api.call(.post, "/api/v1/workflows", Self.tick).status == .created)
            #expect(try await api.call(.post, "/api/v1/workflows", Self.failing).status == .created)
            let approval =
                #"{"name": "gate", "version": "1.0.0", "definition": {"steps": [{"id": "ok", "type": "approval", "config": {"approvers_required": 1}}]}}"#
            #expect(try await api.call(.post, "/api/v1/workflows", approval).status == .created)
            let failed = try await Self.start(api, "boom")
            _ = try await api.waitForRun(failed)
            let gated = try await Self.start(api, "gate")
            let (approver, _) = try await AuthorizationTests.createKey(api, roles: ["approver"])
            try await Task.sleep(for: .milliseconds(300))
            let decided = try await api.call(
                .post,
                "/api/v1/executions/\(gated)/approvals/ok",
                #"{"decision": "approve"}"#,
                headers: ["Authorization": "Bearer \(approver)"]
            )
            #expect(decided.status == .ok, "\(decided.json)")
            #expect(try await api.call(.post, "/api/v1/schedules", #"{"id": "s", "workflow": "tick", "interval_seconds": 3600}"#).status == .created)
            #expect(try await api.call(.post, "/api/v1/schedules/s/trigger").status == .created)
            let wanted: Set<String> = [
                "definition.activated", "run.started", "run.failed", "step.failed", "approval.requested", "approval.decided", "run.completed",
                "schedule.fired",
            ]
            var seen: [JSONValue] = []
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                seen = try await api.call(.get, "/api/v1/events?after=\(Int(head))&limit=500").json["events"]?.arrayValue ?? []
                if wanted.isSubset(of: Set(seen.compactMap { $0["event_type"]?.stringValue })) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let types = Set(seen.compactMap { $0["event_type"]?.stringValue })
            #expect(wanted.isSubset(of: types), "missing \(wanted.subtracting(types))")
            let stepFailed = seen.first { $0["event_type"] == "step.failed" }
            #expect(stepFailed?["payload"]?["run_id"]?.stringValue == failed && stepFailed?["payload"]?["step_id"] == "x")
            #expect(!seen.contains { $0.canonicalString().contains("\"input\"") }, "events carry no payloads of runs")
            // Filtered, and another tenant sees none of it.
            let onlyFailed = try await api.call(.get, "/api/v1/events?after=\(Int(head))&types=run.failed").json["events"]?.arrayValue ?? []
            #expect(onlyFailed.count == 1 && onlyFailed.first?["payload"]?["run_id"]?.stringValue == failed)
            #expect(try await api.call(.get, "/api/v1/events?types=run.exploded").status == .unprocessableContent)
            #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme", "name": "Acme"}"#).status == .created)
            let (acme, _) = try await AuthorizationTests.createKey(api, roles: ["viewer"], tenant: "acme")
            let theirs = try await api.call(.get, "/api/v1/events", headers: ["Authorization": "Bearer \(acme)"]).json["events"]?.arrayValue
            #expect(theirs?.isEmpty == true)
        }
    }
}

/// Live events over Server-Sent Events, and webhooks across a `kill -9`.
@Suite struct LiveEventTests {
    @Test(arguments: APIDriver.all) func aRunsEventsStreamAndResumeAfterLastEventID(_ driver: APIDriver) async throws {
        try await withAPI(driver, leaderServices: true) { api in
            #expect(try await api.call(.post, "/api/v1/workflows", WebhookTests.tick).status == .created)
            let run = try await WebhookTests.start(api, "tick")
            _ = try await api.waitForRun(run)
            let whole = try await api.call(.get, "/api/v1/executions/\(run)/events", headers: ["Accept": "text/event-stream"])
            #expect(whole.status == .ok && whole.headers[.contentType] == "text/event-stream")
            let text = whole.json.stringValue ?? ""
            let ids = text.split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
            #expect(ids == (1...ids.count).map(String.init) && ids.count >= 5, "\(text)")
            #expect(text.contains("event: run_completed") && text.hasSuffix("event: end\ndata: {\"status\":\"COMPLETED\"}\n\n"), "\(text)")
            let resumed = try await api.call(
                .get,
                "/api/v1/executions/\(run)/events",
                headers: ["Accept": "text/event-stream", "Last-Event-ID": "3"]
            )
            let resumedIDs = (resumed.json.stringValue ?? "").split(separator: "\n").filter { $0.hasPrefix("id: ") }.map { String($0.dropFirst(4)) }
            #expect(resumedIDs == Array(ids.dropFirst(3)), "after 3: \(resumedIDs)")
            #expect(try await api.call(.get, "/api/v1/executions/\(run)/events", headers: ["Last-Event-ID": "x"]).status == .unprocessableContent)
            #expect(try await api.call(.get, "/api/v1/executions/nope/events").status == .notFound)

            // The tenant's stream, followed by the client library while runs happen, then resumed where it stopped.
            let port = try #require(api.port)
            let client = WorkflowClient(baseURL: "http://127.0.0.1:\(port)", apiKey: testAdminKey)
            // Where the stream stands once the first run's events are in it (the relay numbers them a moment later).
            var head = 0.0
            for _ in 0..<200 {
                let page = try await api.call(.get, "/api/v1/events?limit=500").json
                head = page["head"]?.numberValue ?? 0
                if page.canonicalString().contains(run) && page.canonicalString().contains("run.completed") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            let received = Collected()
            let follower = Task {
                try await client.follow("/api/v1/events?types=run.completed", after: String(Int(head))) { event in
                    received.add(event)
                    return received.count < 3
                }
            }
            var started: [String] = []
            for _ in 0..<3 {
                let id = try await WebhookTests.start(api, "tick")
                started.append(id)
                _ = try await api.waitForRun(id)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await follower.value }
                group.addTask {
                    try await Task.sleep(for: .seconds(20))
                    follower.cancel()
                }
                try await group.next()
                group.cancelAll()
            }
            let events = received.all
            #expect(events.count == 3 && events.allSatisfy { $0.type == "run.completed" })
            let runIDs = events.compactMap { try? JSONValue.parse(Data($0.data.utf8))["payload"]?["run_id"]?.stringValue }
            #expect(runIDs == started, "in order: \(runIDs) vs \(started)")
            let seqs = events.compactMap { $0.id.flatMap(Int.init) }
            #expect(seqs == seqs.sorted() && Set(seqs).count == 3)
        }
    }

    /// Each open stream polls the database: a node serves a bounded number at once.
    @Test func liveStreamsAreBoundedPerNode() async throws {
        try await withAPIEnvironment(maxStreams: 2) { api, _ in
            let port = try #require(api.port)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            // A client of its own (its streams are left open), shut down however the test ends: a client dropped
            // unshut traps in its deinit and takes the whole test process down (seen in CI, when a request timed out).
            do {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/events")
                request.headers.add(name: "Accept", value: "text/event-stream")
                request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
                // The answer's head arrives at once; its body (the stream) stays open and is never read here.
                var statuses: [UInt] = []
                var open: [HTTPClientResponse] = []
                for _ in 0..<3 {
                    let response = try await http.execute(request, timeout: .seconds(30))
                    statuses.append(response.status.code)
                    open.append(response)
                }
                #expect(statuses == [200, 200, 429], "\(statuses)")
                #expect(try await api.call(.get, "/api/v1/events").status == .ok, "JSON pages are not streams")
                open.removeAll()
            } catch {
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
            // The clients went away mid-stream: their places come back, and a new stream is served.
            let again = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/events")
                request.headers.add(name: "Accept", value: "text/event-stream")
                request.headers.add(name: "Authorization", value: "Bearer \(testAdminKey)")
                try await waitUntil("a stream's place is given back when its client goes", timeout: .seconds(25)) {
                    try await again.execute(request, timeout: .seconds(10)).status == .ok
                }
            } catch {
                try? await again.shutdown()
                throw error
            }
            try await again.shutdown()
        }
    }

    /// The server dies (`kill -9`) while webhooks are being delivered; after a restart every committed event reaches
    /// the endpoint (a delivery in flight at the crash is sent again, with the same webhook-id), and nothing else.
    @Test(.enabled(if: PythonTestTools.enabled)) func webhooksSurviveKillNine() async throws {
        let receiver = try await WebhookReceiver.start(secrets: [WebhookTests.secret])
        defer { receiver.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-webhook-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let flags = ["--webhook-retry-schedule", "0.5s,0.5s,0.5s,0.5s,0.5s"]
        var server = try await UWFProcess.serve(dataDirectory: directory, extra: flags)
        let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
        _ = try await client.registerWorkflow(Data(WebhookTests.tick.utf8), yaml: false)
        let subscription: JSONValue = [
            "id": "slow", "url": .string(receiver.url("/slow")), "event_types": ["run.completed"], "secret": .string(WebhookTests.secret),
        ]
        _ = try await client.createWebhook(subscription)
        var runs: [String] = []
        for _ in 0..<8 { runs.append(try await client.start(workflow: "tick").runId) }
        for run in runs { #expect(try await client.wait(for: run, timeout: .seconds(30)).status == RunStatus.completed) }
        try await Task.sleep(for: .milliseconds(1000))  // the deliveries are in flight (the endpoint takes 3 s)
        server.kill9()
        server = try await UWFProcess.serve(dataDirectory: directory, extra: flags)
        defer { _ = server.terminate() }
        let restarted = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
        let deadline = ContinuousClock.now + .seconds(40)
        var delivered: [JSONValue] = []
        while ContinuousClock.now < deadline {
            let page = try await restarted.webhookDeliveries(webhook: "slow", limit: 100)
            delivered = receiver.entries
            if page.items.count == runs.count, page.items.allSatisfy({ $0.status == "succeeded" }) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let page = try await restarted.webhookDeliveries(webhook: "slow", limit: 100)
        #expect(page.items.count == runs.count && page.items.allSatisfy { $0.status == "succeeded" }, "\(page.items.map(\.status))")
        delivered = receiver.entries
        let byRun = Dictionary(grouping: delivered) { $0["event"]?["payload"]?["run_id"]?.stringValue ?? "" }
        #expect(Set(byRun.keys) == Set(runs), "every committed event arrived, and no other")
        for (run, entries) in byRun {
            #expect(Set(entries.compactMap { $0["id"]?.stringValue }).count == 1, "\(run): duplicates only as retries of one webhook-id")
            #expect(Set(entries.map { $0["event"]?.canonicalString() ?? "" }).count == 1, "\(run): the same event each time")
        }
        #expect(delivered.allSatisfy { $0["verified"] == [true] })
    }
}

final class Collected: @unchecked Sendable {
    private var events: [WorkflowClient.StreamEvent] = []
    private let lock = NSLock()
    func add(_ e: WorkflowClient.StreamEvent) { lock.withLock { events.append(e) } }
    var count: Int { lock.withLock { events.count } }
    var all: [WorkflowClient.StreamEvent] { lock.withLock { events } }
}

/// The `notify` step: versioned templates rendered with Mustache, sent by email (to a real SMTP server) and by webhook.
@Suite(.enabled(if: PythonTestTools.enabled)) struct NotifyTests {
    @Test(arguments: APIDriver.all) func notifyRendersTemplatesAndSendsEmailAndWebhooks(_ driver: APIDriver) async throws {
        let smtp = try await WebhookReceiver.smtpSink()
        defer { smtp.stop() }
        let hooks = try await WebhookReceiver.start(secrets: [])
        defer { hooks.stop() }
        try await withAPIEnvironment(driver, smtpPort: smtp.port, leaderServices: true) { api, _ in
            let v1 = try await api.call(.put, "/api/v1/templates/released", #"{"subject": "Released {{amount}} {{currency}}", "body": "old"}"#)
            #expect(v1.status == .created && v1.json["version"] == 1)
            let v2 = try await api.call(
                .put,
                "/api/v1/templates/released",
                #"{"subject": "Released {{amount}} {{currency}}", "body": "Payment {{run_id}} to {{payee}} <{{note}}> was released.\nÜberweisung ok."}"#
            )
            #expect(v2.json["version"] == 2)
            #expect(try await api.call(.get, "/api/v1/templates/released?version=1").json["body"] == "old")
            #expect(try await api.call(.put, "/api/v1/templates/broken", #"{"body": "{{#open}}"}"#).status == .unprocessableContent)
            #expect(try await api.call(.put, "/api/v1/templates/x", #"{"subject": "no body"}"#).status == .unprocessableContent)
            let workflow = """
                {"name": "tell", "version": "1.0.0", "definition": {"steps": [
                  {"id": "mail", "type": "notify", "config": {"channel": "email", "to": ["ops@bank.example", "${input.cc}"],
                    "template": "released", "data": {"amount": "${input.amount}", "currency": "EUR", "payee": "ACME", "note": "a&b"}}},
                  {"id": "hook", "type": "notify", "config": {"channel": "webhook", "url": "\(hooks.url("/ok"))",
                    "subject": "{{count}} released", "body": "see {{run_id}}", "data": {"count": 2}}}
                ]}}
                """
            #expect(try await api.call(.post, "/api/v1/workflows", workflow).status == .created)
            let bad =
                #"{"name": "bad", "version": "1.0.0", "definition": {"steps": [{"id": "m", "type": "notify", "config": {"channel": "email", "body": "x"}}]}}"#
            let refused = try await api.call(.post, "/api/v1/workflows", bad)
            #expect(refused.status == .unprocessableContent && refused.json.canonicalString().contains("/steps/0/config/to"), "\(refused.json)")
            let started = try await api.call(.post, "/api/v1/workflows/tell/execute", #"{"input": {"amount": 250000, "cc": "audit@bank.example"}}"#)
            let id = try #require(started.json["run_id"]?.stringValue)
            let done = try await api.waitForRun(id)
            #expect(done["status"] == "COMPLETED", "\(done)")
            let mails = try await smtp.waitFor { $0.count >= 1 }
            let mail = try #require(mails.first)
            #expect(mail["to"] == ["ops@bank.example", "audit@bank.example"] && mail["from"] == "uwf@bank.example")
            #expect(mail["subject"] == "Released 250000 EUR", "\(mail)")
            #expect(
                mail["body"]?.stringValue == "Payment \(id) to ACME <a&b> was released.\nÜberweisung ok.",
                "plain text, not HTML-escaped: \(mail)"
            )
            #expect(mail["message_id"]?.stringValue?.contains(id) == true, "the step's idempotency key names the message")
            let posted = try await hooks.waitFor { $0.count >= 1 }
            #expect(posted.first?["event"]?["subject"] == "2 released" && posted.first?["event"]?["body"]?.stringValue == "see \(id)")
            let steps = try await api.call(.get, "/api/v1/executions/\(id)").json["steps"]?.arrayValue ?? []
            #expect(steps.first { $0["id"] == "mail" }?["output"]?["template"] == "released@2")

            // No template by that name: the step fails for good, with a code that says so.
            let missing =
                #"{"name": "lost", "version": "1.0.0", "definition": {"steps": [{"id": "m", "type": "notify", "config": {"channel": "email", "to": ["a@b.example"], "template": "nope"}}]}}"#
            #expect(try await api.call(.post, "/api/v1/workflows", missing).status == .created)
            let lost = try await api.waitForRun(try await WebhookTests.start(api, "lost"))
            #expect(lost["status"] == "FAILED" && lost.canonicalString().contains("template_not_found"), "\(lost)")
        }
    }

    /// A relay that wants TLS and a login: STARTTLS on the submission port and TLS from the first byte both deliver,
    /// logged in; a client that would talk in clear, or that does not trust the relay's certificate, is refused.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") || PostgresTestDatabase.isRequired))
    func emailGoesOverTLSWithALoginWhenTheRelayWantsThem() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-smtp-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await TLSTests.makeCertificates(in: directory)
        let cert = directory.appendingPathComponent("server.pem").path
        let key = directory.appendingPathComponent("server.key").path
        let ca = try NIOSSLCertificate.fromPEMFile(directory.appendingPathComponent("ca.pem").path)
        let workflow = """
            {"name": "mail", "version": "1.0.0", "definition": {"steps": [
              {"id": "m", "type": "notify", "config": {"channel": "email", "to": ["ops@bank.example"], "subject": "hi", "body": "over TLS"}}
            ]}}
            """
        func send(_ smtp: SMTPConfiguration) async throws -> JSONValue {
            try await withAPIEnvironment(smtp: smtp) { api, _ in
                #expect(try await api.call(.post, "/api/v1/workflows", workflow).status == .created)
                return try await api.waitForRun(try await WebhookTests.start(api, "mail"))
            }
        }
        for mode in [SMTPConfiguration.Security.starttls, .tls] {
            let sink = try await WebhookReceiver.smtpSink(["--\(mode.rawValue)", cert, key, "--auth", "alice", "s3cret"])
            defer { sink.stop() }
            let relay = SMTPConfiguration(
                host: "127.0.0.1",
                port: sink.port,
                from: "uwf@bank.example",
                timeout: .seconds(10),
                security: mode,
                username: "alice",
                password: "s3cret",
                trustRoots: ca
            )
            let done = try await send(relay)
            #expect(done["status"] == "COMPLETED", "\(mode): \(done)")
            let mails = try await sink.waitFor { $0.count >= 1 }
            #expect(mails.first?["login"] == "alice" && mails.first?["body"] == "over TLS", "\(mode): \(mails)")

            if mode == .starttls {
                // In clear, the relay refuses the mail (530 until STARTTLS): a final answer, not retried.
                var clear = relay
                clear.security = .off
                let refused = try await send(clear)
                #expect(refused["status"] == "FAILED" && refused.canonicalString().contains("smtp_error"), "\(refused)")
                // A relay whose certificate does not chain to the trusted CA is not talked to.
                var untrusted = relay
                untrusted.trustRoots = []
                let distrusted = try await send(untrusted)
                #expect(distrusted["status"] == "FAILED" && distrusted.canonicalString().contains("connection_error"), "\(distrusted)")
                #expect(try await sink.waitFor { $0.count >= 1 }.count == 1, "nothing else was delivered")
            }
        }
    }
}
