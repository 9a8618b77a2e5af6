import Foundation
import Hummingbird
import Synchronization
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// Routes of the stand-in remote system.
@Sendable func remoteRoutes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
    router.post("/slow") { request, _ in
        let ms = Int(request.uri.queryParameters.get("ms") ?? "300") ?? 300
        try await Task.sleep(for: .milliseconds(ms))
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"slept":\#(ms)}"#)))
    }
    router.post("/together") { request, _ in
        // A barrier: answers only once `n` calls have arrived (or after 20 s, saying so), so a test can prove that
        // branches ran at the same time without comparing clocks on a loaded machine.
        let n = Int(request.uri.queryParameters.get("n") ?? "2") ?? 2
        let deadline = ContinuousClock.now + .seconds(20)
        while server.requests(path: "/together").count < n, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let met = server.requests(path: "/together").count >= n
        return Response(
            status: .ok,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: #"{"met":\#(met),"slept":400}"#))
        )
    }
    router.post("/flaky") { request, _ in
        let key = request.headers.first { $0.name.canonicalName == "idempotency-key" }?.value ?? "none"
        let failures = Int(request.uri.queryParameters.get("failures") ?? "2") ?? 2
        if server.count("flaky:\(key)") <= failures {
            return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "try later")))
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"approved":true}"#)))
    }
    router.post("/reject") { _, _ in
        Response(
            status: .unprocessableContent,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: #"{"reason":"blocked"}"#))
        )
    }
    router.post("/hold") { _, _ in
        // Holds the call for up to 30 s, or until the test releases it (so the server can shut down promptly).
        let deadline = ContinuousClock.now + .seconds(30)
        while !server.isSet("release"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return Response(status: .ok)
    }
}

@Suite struct EngineBehaviourTests {
    @Test(arguments: TestDriver.all) func parallelBranchesOverlapInTime(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "fan", "version": "1.0.0", "definition": {"steps": [
                      {"id": "b1", "type": "http_request", "config": {"url": "\(remote.baseURL)/together?n=3", "method": "POST"}},
                      {"id": "b2", "type": "http_request", "config": {"url": "\(remote.baseURL)/together?n=3", "method": "POST"}},
                      {"id": "b3", "type": "http_request", "config": {"url": "\(remote.baseURL)/together?n=3", "method": "POST"}},
                      {"id": "join", "type": "echo", "depends_on": ["b1", "b2", "b3"],
                       "config": {"total": "${steps.b1.output.body.slept + steps.b2.output.body.slept + steps.b3.output.body.slept}"}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed)
                #expect(done.output == ["join": ["total": 1200]])
                #expect(remote.requests(path: "/together").count == 3)
                // Each branch's call was answered only once all three had arrived: they were in flight together.
                // (Timestamps would do on an idle machine; on a loaded CI machine a barrier cannot be fooled.)
                let steps = try await h.steps(run.id)
                for branch in ["b1", "b2", "b3"] { #expect(steps[branch]?.output?["body"]?["met"] == true) }
                #expect(steps["b1"]?.output?["status"] == 200)
                #expect(steps["b1"]?.output?["headers"]?["content-type"] == "application/json")
            }
        }
    }

    @Test(arguments: TestDriver.all) func retriesWithBackoffAndOneIdempotencyKey(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "flaky", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request", "config": {"url": "\(remote.baseURL)/flaky?failures=2", "method": "POST", "body": {"n": 1}},
                       "retry": {"max_attempts": 4, "backoff": "exponential", "initial_interval_ms": 150, "max_interval_ms": 1000}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed)
                let step = try await h.steps(run.id)["call"]
                #expect(step?.status == .success)
                #expect(step?.attempt == 3)
                #expect(step?.output?["body"] == ["approved": true])
                let calls = remote.requests(path: "/flaky")
                #expect(calls.count == 3)
                #expect(Set(calls.map { $0.headers["idempotency-key"] }) == ["\(run.id)/call"])
                #expect(calls.allSatisfy { $0.body == #"{"n":1}"# && $0.headers["content-type"] == "application/json" })
                // The waits between attempts are at least the backoff: 150 ms, then 300 ms.
                let gaps = zip(calls.dropFirst(), calls).map { $0.arrivedAt - $1.arrivedAt }
                #expect(gaps[0] >= .milliseconds(145))
                #expect(gaps[1] >= .milliseconds(295))
                let retries = try await h.events(run.id).filter { $0.type == "step_retrying" }
                #expect(retries.map { $0.data["delay_ms"] } == [150, 300])
                #expect(retries.first?.data["error"]?["code"] == "http_error")
            }
        }
    }

    /// Long waits are instants on the engine's clock: a day-long delay and an hour-long backoff end when the clock
    /// passes them, and not a moment before. The test moves time itself instead of sleeping.
    @Test(arguments: TestDriver.all) func aDayLongDelayAndAnHourLongBackoffEndWhenTheClockPassesThem(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            let clock = ManualClock()
            try await withEngine(driver, clock: clock) { h in
                let definition = try await h.register(
                    """
                    {"name": "patient", "version": "1.0.0", "definition": {"steps": [
                      {"id": "wait", "type": "delay", "config": {"duration_ms": 86400000}},
                      {"id": "call", "type": "http_request", "depends_on": ["wait"],
                       "config": {"url": "\(remote.baseURL)/flaky?failures=1", "method": "POST"},
                       "retry": {"max_attempts": 2, "backoff": "fixed", "initial_interval_ms": 3600000}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let stillWaiting = { try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .running }
                try await waitUntil("the delay is suspended") {
                    try await h.events(run.id).contains { $0.type == "step_suspended" && $0.stepID == "wait" }
                }
                clock.advance(by: 86_399)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await stillWaiting(), "a second before the day is over")
                #expect(remote.requests(path: "/flaky").isEmpty)
                clock.advance(by: 1.001)  // past the day by a millisecond, the precision of stored instants
                do {
                    try await waitUntil("the first attempt failed") {
                        try await h.events(run.id).contains { $0.type == "step_retrying" }
                    }
                } catch {
                    let history = try await h.events(run.id).map { "\($0.type)(\($0.stepID ?? "")) \($0.data.canonicalString())" }
                    let tasks = try await h.store.taskCount(runID: run.id)
                    Issue.record("clock at \(clock.now().timeIntervalSince1970); \(tasks) tasks; history:\n\(history.joined(separator: "\n"))")
                    throw error
                }
                clock.advance(by: 3_599)
                try await Task.sleep(for: .milliseconds(300))
                #expect(remote.requests(path: "/flaky").count == 1, "no second attempt before the hour is over")
                clock.advance(by: 1.001)
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed)
                #expect(remote.requests(path: "/flaky").count == 2)
                let steps = try await h.steps(run.id)
                #expect(steps["wait"]?.status == .success)
                #expect(steps["call"]?.attempt == 2)
            }
        }
    }

    @Test(arguments: TestDriver.all) func clientErrorsFailTheStepWithoutRetry(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "reject", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request", "config": {"url": "\(remote.baseURL)/reject", "method": "POST"},
                       "retry": {"max_attempts": 5, "initial_interval_ms": 10}},
                      {"id": "after", "type": "noop", "depends_on": ["call"]}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .failed)
                #expect(done.error?["step_id"] == "call")
                #expect(done.error?["code"] == "step_failed")
                let step = try await h.steps(run.id)["call"]
                #expect(step?.attempt == 1)
                #expect(step?.error?["details"]?["status"] == 422)
                #expect(step?.error?["details"]?["body"] == ["reason": "blocked"])
                #expect(remote.requests(path: "/reject").count == 1)
                #expect(try await h.steps(run.id)["after"] == nil)
            }
        }
    }

    @Test(arguments: TestDriver.all) func falseConditionsSkipAndSkipsCascade(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let flow = try await h.register(
                """
                {"name": "branching", "version": "1.0.0", "definition": {"steps": [
                  {"id": "score", "type": "transform", "config": {"output": {"high": "${input.amount > 10000}"}}},
                  {"id": "review", "type": "echo", "depends_on": ["score"], "when": "steps.score.output.high"},
                  {"id": "notify_reviewer", "type": "echo", "depends_on": ["review"]},
                  {"id": "auto", "type": "echo", "depends_on": ["score"], "when": "!steps.score.output.high"},
                  {"id": "book", "type": "echo", "depends_on": ["review", "auto"], "config": {"via": "${steps.auto.status}"}}
                ], "output": {"booked": "${steps.book.output.via}"}}}
                """
            )
            let run = try await h.engine.start(definition: flow, input: ["amount": 500])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            #expect(done.output == ["booked": "SUCCESS"])
            let steps = try await h.steps(run.id)
            #expect(steps["review"]?.status == .skipped)
            #expect(steps["notify_reviewer"]?.status == .skipped)
            #expect(steps["auto"]?.status == .success)
            #expect(steps["book"]?.status == .success)
            let skips = try await h.events(run.id).filter { $0.type == "step_skipped" }.map(\.data["reason"])
            #expect(skips == ["condition is false", "every dependency was skipped"])
        }
    }

    @Test(arguments: TestDriver.all) func cancellationStopsExecutingStepsAndCancelsQueuedOnes(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "long", "version": "1.0.0", "definition": {"steps": [
                      {"id": "hold", "type": "http_request", "timeout_ms": 60000, "config": {"url": "\(remote.baseURL)/hold", "method": "POST", "timeout_ms": 60000}},
                      {"id": "wait", "type": "delay", "config": {"duration_ms": 60000}},
                      {"id": "after", "type": "noop", "depends_on": ["hold", "wait"]}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let deadline = ContinuousClock.now + .seconds(10)
                // The remote may see the call a moment before the node has booked the execution (the task starts first).
                while remote.requests(path: "/hold").isEmpty || h.engine.activeExecutions == 0, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(h.engine.activeExecutions == 1)

                let cancelled = try await h.engine.cancel(runID: run.id)
                #expect(cancelled.status == .cancelled)
                let steps = try await h.steps(run.id)
                #expect(steps["hold"]?.status == .cancelled)
                #expect(steps["wait"]?.status == .cancelled)
                #expect(steps["after"] == nil)
                #expect(try await h.store.taskCount(runID: run.id) == 0)
                // The remote call is abandoned cooperatively, long before the remote answers (30 s).
                let stopBy = ContinuousClock.now + .seconds(5)
                while h.engine.activeExecutions > 0, ContinuousClock.now < stopBy { try await Task.sleep(for: .milliseconds(10)) }
                #expect(h.engine.activeExecutions == 0)
                #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .cancelled)
                await #expect(throws: WorkflowError.self) { try await h.engine.cancel(runID: run.id) }
                do {
                    _ = try await h.engine.cancel(runID: run.id)
                } catch let error as WorkflowError {
                    #expect(error.code == .runNotCancellable)
                }
                let types = try await h.events(run.id).map(\.type)
                #expect(types.suffix(3) == ["step_cancelled", "step_cancelled", "run_cancelled"])
                remote.set("release")
            }
        }
    }

    @Test(arguments: TestDriver.all) func stepTimeoutIsRetriedThenFails(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(remoteRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "slow", "version": "1.0.0", "definition": {"steps": [
                      {"id": "call", "type": "http_request", "timeout_ms": 600, "config": {"url": "\(remote.baseURL)/hold", "method": "POST"},
                       "retry": {"max_attempts": 2, "backoff": "fixed", "initial_interval_ms": 10}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .failed)
                let step = try await h.steps(run.id)["call"]
                #expect(step?.attempt == 2)
                #expect(step?.error?["code"] == "timeout")
                #expect(remote.requests(path: "/hold").count == 2)
                remote.set("release")
            }
        }
    }

    @Test(arguments: TestDriver.all) func workflowTimeoutFailsTheRun(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "sleepy", "version": "1.0.0", "definition": {"timeout_ms": 300, "steps": [
                  {"id": "nap", "type": "delay", "config": {"duration_ms": 60000}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.error?["code"] == "run_timeout")
            #expect(try await h.steps(run.id)["nap"]?.status == .cancelled)
            #expect(try await h.store.taskCount(runID: run.id) == 0)
        }
    }

    @Test(arguments: TestDriver.all) func aFailedStepFailsTheRunAndCancelsTheRest(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "failing", "version": "1.0.0", "definition": {"steps": [
                  {"id": "wait", "type": "delay", "config": {"duration_ms": 60000}},
                  {"id": "gate", "type": "noop"},
                  {"id": "boom", "type": "fail", "depends_on": ["gate"], "config": {"message": "insufficient funds"}},
                  {"id": "never", "type": "noop", "depends_on": ["boom", "wait"]}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            let steps = try await h.steps(run.id)
            #expect(steps["boom"]?.status == .failed)
            #expect(steps["wait"]?.status == .cancelled)
            #expect(steps["never"] == nil)
            #expect(try await h.store.taskCount(runID: run.id) == 0)
        }
    }

    @Test(arguments: TestDriver.all) func aTemplateThatCannotRenderFailsItsStep(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "bad-template", "version": "1.0.0", "definition": {"steps": [
                  {"id": "a", "type": "echo", "config": {"n": 0}},
                  {"id": "b", "type": "echo", "depends_on": ["a"], "config": {"x": "${1 / steps.a.output.n}"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            let b = try await h.steps(run.id)["b"]
            #expect(b?.status == .failed)
            #expect(b?.error?["code"] == "template_error")
            #expect(b?.error?["message"] == "config: division by zero")
        }
    }

    @Test(arguments: TestDriver.all) func failStepMessageReachesTheRun(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "reject-it", "version": "1.0.0", "definition": {"steps": [
                  {"id": "ok", "type": "noop"},
                  {"id": "boom", "type": "fail", "depends_on": ["ok"], "config": {"message": "insufficient funds"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.error?["message"] == "step 'boom' failed: insufficient funds")
            #expect(try await h.steps(run.id)["ok"]?.status == .success)
        }
    }

    @Test(arguments: TestDriver.all) func aCrashedNodesWorkIsTakenOverAndRecordedOnce(_ driver: TestDriver) async throws {
        let started = Mutex<String?>(nil)
        try await withEngine(
            driver,
            beforeStart: { h in
                let definition = try await h.register(
                    """
                    {"name": "takeover", "version": "1.0.0", "definition": {"steps": [
                      {"id": "a", "type": "echo", "config": {"v": 1}},
                      {"id": "b", "type": "echo", "depends_on": ["a"], "config": {"v": "${steps.a.output.v + 1}"}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                started.withLock { $0 = run.id }
                // A node claims the first step and dies before finishing it.
                let now = Date()
                let claim = try await h.store.taskClaim(
                    TaskClaimParams(
                        owner: "dead-node",
                        limit: 10,
                        leaseExpiresAt: now.addingTimeInterval(1),
                        now: now,
                        onClaim: { snapshot, task in RunStateMachine.claim(snapshot: snapshot, task: task, owner: "dead-node", now: now) }
                    )
                )
                #expect(claim.claimed.count == 1)
            }
        ) { h in
            let runID = try #require(started.withLock { $0 })
            let done = try await h.waitForRun(runID)
            #expect(done.status == .completed)
            #expect(done.output == ["b": ["v": 2]])
            let events = try await h.events(runID)
            let starts = events.filter { $0.type == "step_started" && $0.stepID == "a" }
            #expect(starts.count == 2)
            #expect(starts.last?.data["taken_over_from"] == "dead-node")
            #expect(events.filter { $0.type == "step_succeeded" && $0.stepID == "a" }.count == 1)
            #expect(try await h.steps(runID)["a"]?.attempt == 2)
        }
    }
}
