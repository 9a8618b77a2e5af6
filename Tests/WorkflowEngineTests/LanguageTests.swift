import Foundation
import Hummingbird
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowTestSupport

/// A remote system whose answer the test controls: `/gate` refuses (422) until the flag `open` is set.
@Sendable func gateRoutes(_ router: Router<BasicRequestContext>, _ server: LocalHTTPServer) {
    router.post("/gate") { _, _ in
        if server.isSet("open") {
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"ok":true}"#)))
        }
        return Response(status: .unprocessableContent, body: .init(byteBuffer: ByteBuffer(string: "closed")))
    }
}

@Suite struct LanguageTests {
    // MARK: switch

    @Test(arguments: TestDriver.all) func switchTakesTheFirstMatchingCaseAndSkipsTheOtherBranches(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "route", "version": "1.0.0", "definition": {"steps": [
                  {"id": "route", "type": "switch", "config": {
                     "cases": [{"when": "input.amount > 10000", "next": ["review"]}, {"when": "input.amount > 100", "next": ["check"]}],
                     "default": ["auto"]}},
                  {"id": "review", "type": "echo", "depends_on": ["route"], "config": {"path": "review"}},
                  {"id": "check", "type": "echo", "depends_on": ["route"], "config": {"path": "check"}},
                  {"id": "auto", "type": "echo", "depends_on": ["route"], "config": {"path": "auto"}},
                  {"id": "after_review", "type": "noop", "depends_on": ["review"]},
                  {"id": "join", "type": "echo", "depends_on": ["review", "check", "auto"],
                   "config": {"branch": "${steps.route.output.branch}"}}
                ]}}
                """
            )
            for (amount, branch, ran) in [(50_000, JSONValue.number(0), "review"), (500, .number(1), "check"), (5, "default", "auto")] {
                let run = try await h.engine.start(definition: definition, input: ["amount": .number(Double(amount))])
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed)
                let steps = try await h.steps(run.id)
                #expect(steps["route"]?.output == ["branch": branch])
                for id in ["review", "check", "auto"] {
                    #expect(steps[id]?.status == (id == ran ? .success : .skipped), "amount \(amount), step \(id)")
                }
                // Depends only on a skipped step: skipped too. Depends on one taken branch: runs.
                #expect(steps["after_review"]?.status == (ran == "review" ? .success : .skipped))
                #expect(steps["join"]?.output == ["branch": branch])
            }
        }
    }

    @Test func switchBranchesMustDependOnTheSwitch() throws {
        #expect {
            try WorkflowDocument.validate(
                try JSONValue.parse(
                    """
                    {"name": "bad", "version": "1.0.0", "definition": {"steps": [
                      {"id": "route", "type": "switch", "config": {"cases": [{"when": "true", "next": ["a", "ghost"]}]}},
                      {"id": "a", "type": "noop"}
                    ]}}
                    """
                )
            )
        } throws: { error in
            let issues = (error as? ValidationError)?.issues ?? []
            return issues.contains { $0.pointer == "/definition/steps/0/config/cases/0/next/0" && $0.message.contains("must depend on 'route'") }
                && issues.contains { $0.pointer == "/definition/steps/0/config/cases/0/next/1" && $0.message.contains("unknown step 'ghost'") }
        }
    }

    // MARK: foreach

    @Test(arguments: TestDriver.all) func foreachRunsNestedStepsPerItemWithBoundedConcurrency(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "batch", "version": "1.0.0", "definition": {"steps": [
                  {"id": "pay", "type": "foreach", "config": {"items": "${input.beneficiaries}", "max_concurrency": 3, "steps": [
                     {"id": "wait", "type": "delay", "config": {"duration_ms": 20}},
                     {"id": "debit", "type": "transform", "depends_on": ["wait"],
                      "config": {"output": {"to": "${item.name}", "cents": "${item.amount * 100}", "n": "${index}", "cur": "${input.currency}"}}}
                  ]}},
                  {"id": "total", "type": "echo", "depends_on": ["pay"], "config": {"count": "${len(steps.pay.output.results)}"}}
                ]}}
                """
            )
            let items: [JSONValue] = (0..<12).map { ["name": .string("b\($0)"), "amount": .number(Double($0))] }
            let run = try await h.engine.start(definition: definition, input: ["beneficiaries": .array(items), "currency": "EUR"])
            let done = try await h.waitForRun(run.id, timeout: .seconds(60))
            #expect(done.status == .completed)
            let steps = try await h.steps(run.id)
            let results = steps["pay"]?.output?["results"]?.arrayValue ?? []
            #expect(results.count == 12)
            for (i, result) in results.enumerated() {
                #expect(result == ["to": .string("b\(i)"), "cents": .number(Double(i * 100)), "n": .number(Double(i)), "cur": "EUR"])
            }
            #expect(steps["total"]?.output == ["count": 12])

            // Each item is a child run of the foreach step; never more than max_concurrency ran at once.
            let children = try await h.store.runChildren(parentRunID: run.id, stepID: "pay", unfinishedOnly: false)
            #expect(children.count == 12)
            #expect(children.allSatisfy { $0.status == .completed && $0.parentRunID == run.id && $0.bodyPath == "pay" })
            // Each item carries the parent's input for `input` expressions, but not the items themselves.
            #expect(children.first?.input["input"] == ["currency": "EUR"])
            let spans = children.map { ($0.startedAt!, $0.completedAt!) }
            let most = spans.map { start in spans.filter { $0.0 <= start.0 && start.0 < $0.1 }.count }.max() ?? 0
            #expect(most <= 3, "at most 3 items in flight, saw \(most)")
            #expect(most >= 2, "items ran in parallel")
        }
    }

    @Test(arguments: TestDriver.all) func foreachItemFailures(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let tolerant = try await h.register(
                """
                {"name": "tolerant", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.items}", "continue_on_error": true, "steps": [
                     {"id": "check", "type": "fail", "when": "item.bad", "config": {"message": "bad item"}},
                     {"id": "ok", "type": "transform", "config": {"output": "${item.v}"}}
                  ]}}
                ]}}
                """
            )
            let input: JSONValue = ["items": [["v": 1, "bad": false], ["v": 2, "bad": true], ["v": 3, "bad": false]]]
            let run = try await h.engine.start(definition: tolerant, input: input)
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            let results = try await h.steps(run.id)["each"]?.output?["results"]?.arrayValue ?? []
            #expect(results.count == 3)
            #expect(results[0] == 1)
            #expect(results[1]["error"]?["step_id"] == "check")
            #expect(results[2] == 3)

            let strict = try await h.register(
                """
                {"name": "strict", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.items}", "max_concurrency": 1, "steps": [
                     {"id": "check", "type": "fail", "when": "item.bad", "config": {"message": "bad item"}}
                  ]}}
                ]}}
                """
            )
            let items: [JSONValue] = [["bad": false], ["bad": true]] + Array(repeating: ["bad": false], count: 5)
            let failing = try await h.engine.start(definition: strict, input: ["items": .array(items)])
            let failed = try await h.waitForRun(failing.id)
            #expect(failed.status == .failed)
            #expect(failed.error?["step_id"] == "each")
            let step = try await h.steps(failing.id)["each"]
            #expect(step?.error?["code"] == "item_failed")
            #expect(step?.error?["details"]?["index"] == 1)
            // The items never released are cancelled, not left pending.
            try await waitUntil {
                try await h.store.runChildren(parentRunID: failing.id, stepID: nil, unfinishedOnly: true).isEmpty
            }
            let children = try await h.store.runChildren(parentRunID: failing.id, stepID: nil, unfinishedOnly: false)
            #expect(children.map(\.status) == [.completed, .failed] + Array(repeating: .cancelled, count: 5))
        }
    }

    @Test func foreachRefusesMoreItemsThanItsLimit() async throws {
        try await withEngine { h in
            let definition = try await h.register(
                """
                {"name": "huge", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.items}", "steps": [{"id": "n", "type": "noop"}]}}
                ]}}
                """
            )
            let items = JSONValue.array(Array(repeating: 0, count: RunStateMachine.maxForeachItems + 1))
            let run = try await h.engine.start(definition: definition, input: ["items": items])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(try await h.steps(run.id)["each"]?.error?["code"] == "too_many_items")
            #expect(try await h.store.runChildren(parentRunID: run.id, stepID: nil, unfinishedOnly: false).isEmpty)
        }
    }

    @Test(arguments: TestDriver.all) func foreachOfTenThousandItems(_ driver: TestDriver) async throws {
        let count = 10_000
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "big", "version": "1.0.0", "definition": {"steps": [
                  {"id": "each", "type": "foreach", "config": {"items": "${input.items}", "max_concurrency": 200, "steps": [
                     {"id": "double", "type": "transform", "config": {"output": "${item * 2}"}}
                  ]}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: ["items": .array((0..<count).map { .number(Double($0)) })])
            let done = try await h.waitForRun(run.id, timeout: .seconds(300))
            #expect(done.status == .completed)
            let results = try await h.steps(run.id)["each"]?.output?["results"]?.arrayValue ?? []
            #expect(results.count == count)
            #expect(results.enumerated().allSatisfy { $0.element == .number(Double($0.offset * 2)) })
            // The parent's own record stays small: its steps are the foreach alone, its history a handful of entries.
            #expect(try await h.steps(run.id).count == 1)
            #expect(try await h.events(run.id).count < 20)
        }
    }

    // MARK: sub_workflow

    @Test(arguments: TestDriver.all) func subWorkflowRunsAChildAndWaitsForIt(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            _ = try await h.register(
                """
                {"name": "kyc-check", "version": "1.2.0", "definition": {"steps": [
                  {"id": "score", "type": "transform", "config": {"output": {"customer": "${input.customer}", "score": 42}}}
                ], "output": "${steps.score.output}"}}
                """
            )
            _ = try await h.register(
                """
                {"name": "kyc-check", "version": "2.0.0", "definition": {"steps": [
                  {"id": "score", "type": "fail", "config": {"message": "v2 is broken"}}
                ]}}
                """
            )
            let parent = try await h.register(
                """
                {"name": "onboard", "version": "1.0.0", "definition": {"steps": [
                  {"id": "kyc", "type": "sub_workflow", "config": {"workflow": "kyc-check", "version": "1.2.0", "input": {"customer": "${input.name}"}}},
                  {"id": "done", "type": "echo", "depends_on": ["kyc"], "config": {"score": "${steps.kyc.output.score}"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: parent, input: ["name": "Ada"])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            let steps = try await h.steps(run.id)
            #expect(steps["kyc"]?.output == ["customer": "Ada", "score": 42])
            #expect(steps["done"]?.output == ["score": 42])
            let children = try await h.store.runChildren(parentRunID: run.id, stepID: "kyc", unfinishedOnly: false)
            #expect(children.count == 1)
            #expect(children.first?.workflowVersion == "1.2.0")
            #expect(children.first?.parentRunID == run.id)

            // Without a version the highest one runs; its failure fails the step and the parent.
            let latest = try await h.register(
                """
                {"name": "onboard-latest", "version": "1.0.0", "definition": {"steps": [
                  {"id": "kyc", "type": "sub_workflow", "config": {"workflow": "kyc-check"}}
                ]}}
                """
            )
            let failing = try await h.engine.start(definition: latest, input: [:])
            let failed = try await h.waitForRun(failing.id)
            #expect(failed.status == .failed)
            #expect(try await h.steps(failing.id)["kyc"]?.error?["code"] == "child_run_failed")
        }
    }

    @Test func aWorkflowCallingItselfStopsAtTheNestingLimit() async throws {
        try await withEngine { h in
            let definition = try await h.register(
                """
                {"name": "ouroboros", "version": "1.0.0", "definition": {"steps": [
                  {"id": "again", "type": "sub_workflow", "config": {"workflow": "ouroboros"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id, timeout: .seconds(60))
            #expect(done.status == .failed)
            // The innermost run failed with nesting_too_deep; each parent failed because its child did.
            var innermost = run.id
            var depth = 1
            while let child = try await h.store.runChildren(parentRunID: innermost, stepID: nil, unfinishedOnly: false).first {
                innermost = child.id
                depth += 1
            }
            #expect(depth == 32)
            #expect(try await h.steps(innermost)["again"]?.error?["code"] == "nesting_too_deep")
        }
    }

    @Test(arguments: TestDriver.all) func cancellingAParentCancelsItsChild(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            _ = try await h.register(
                """
                {"name": "child", "version": "1.0.0", "definition": {"steps": [
                  {"id": "wait", "type": "wait_for_signal", "config": {"signal": "never"}}
                ]}}
                """
            )
            let parent = try await h.register(
                """
                {"name": "parent", "version": "1.0.0", "definition": {"steps": [
                  {"id": "call", "type": "sub_workflow", "config": {"workflow": "child"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: parent, input: [:])
            var child: RunRecord?
            try await waitUntil {
                child = try await h.store.runChildren(parentRunID: run.id, stepID: nil, unfinishedOnly: false).first
                return child?.status == .running
            }
            _ = try await h.engine.cancel(runID: run.id)
            let cancelledChild = try await h.waitForRun(child!.id)
            #expect(cancelledChild.status == .cancelled)
            #expect(try await h.steps(run.id)["call"]?.status == .cancelled)
        }
    }

    // MARK: signals

    @Test(arguments: TestDriver.all) func signalsCompleteWaitsAndEarlySignalsAreKept(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "kyc-wait", "version": "1.0.0", "definition": {"steps": [
                  {"id": "hold", "type": "delay", "config": {"duration_ms": 300}},
                  {"id": "early", "type": "wait_for_signal", "depends_on": ["hold"], "config": {"signal": "early_docs"}},
                  {"id": "docs", "type": "wait_for_signal", "depends_on": ["early"], "config": {"signal": "documents_received", "timeout_ms": 60000}},
                  {"id": "review", "type": "echo", "depends_on": ["docs"], "config": {"files": "${steps.docs.output.files}"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            // Sent before any step waits for it: kept, then consumed when `early` is reached.
            let kept = try await h.engine.signal(runID: run.id, name: "early_docs", payload: ["n": 1])
            #expect(kept.pendingSignals.map(\.name) == ["early_docs"])
            try await waitUntil { try await h.steps(run.id)["docs"]?.status == .waiting }
            #expect(try await h.steps(run.id)["early"]?.output == ["n": 1])
            #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.pendingSignals.isEmpty == true)
            // Signals nobody waits for are kept, up to a limit.
            for _ in 0..<RunStateMachine.maxPendingSignals {
                try await h.engine.signal(runID: run.id, name: "unrelated", payload: [:])
            }
            do {
                try await h.engine.signal(runID: run.id, name: "unrelated", payload: [:])
                Issue.record("signal 101 must be refused")
            } catch let error as WorkflowError {
                #expect(error.code == .tooManySignals)
            }
            try await h.engine.signal(runID: run.id, name: "documents_received", payload: ["files": ["id.pdf"]])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            #expect(try await h.steps(run.id)["review"]?.output == ["files": ["id.pdf"]])
            let types = try await h.events(run.id).map(\.type)
            #expect(types.filter { $0 == "signal_received" }.count == 2 + RunStateMachine.maxPendingSignals)
            #expect(types.filter { $0 == "signal_consumed" }.count == 2)

            await #expect(throws: WorkflowError.self) { try await h.engine.signal(runID: run.id, name: "late", payload: [:]) }
            do {
                try await h.engine.signal(runID: run.id, name: "late", payload: [:])
            } catch let error as WorkflowError {
                #expect(error.code == .runFinished)
            }
            do {
                try await h.engine.signal(runID: "no-such-run", name: "x", payload: [:])
                Issue.record("a signal to an unknown run must fail")
            } catch let error as WorkflowError {
                #expect(error.code == .runNotFound)
            }
        }
    }

    @Test(arguments: TestDriver.all) func signalTimeoutFailsOrContinues(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "timeouts", "version": "1.0.0", "definition": {"steps": [
                  {"id": "soft", "type": "wait_for_signal", "config": {"signal": "a", "timeout_ms": 200, "on_timeout": "continue"}},
                  {"id": "hard", "type": "wait_for_signal", "depends_on": ["soft"], "config": {"signal": "b", "timeout_ms": 200, "on_timeout": "fail"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            let steps = try await h.steps(run.id)
            #expect(steps["soft"]?.status == .success)
            #expect(steps["soft"]?.output?["timed_out"] == true)
            #expect(steps["hard"]?.error?["code"] == "signal_timeout")
        }
    }

    // MARK: compensation, continue_on_error, on_failure

    @Test(arguments: TestDriver.all) func compensationsRunInReverseCompletionOrder(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "transfer", "version": "1.0.0", "definition": {"steps": [
                  {"id": "reserve", "type": "transform", "config": {"output": {"hold": "H1"}},
                   "compensate": {"type": "echo", "config": {"release": "${steps.reserve.output.hold}"}}},
                  {"id": "debit", "type": "transform", "depends_on": ["reserve"], "config": {"output": {"debit_id": "D1"}},
                   "compensate": {"type": "echo", "config": {"refund": "${steps.debit.output.debit_id}", "because": "${run.error.code}"}}},
                  {"id": "note", "type": "noop", "depends_on": ["debit"]},
                  {"id": "credit", "type": "fail", "depends_on": ["note"], "config": {"message": "beneficiary account closed"},
                   "compensate": {"type": "echo"}}
                ],
                "on_failure": {"type": "echo", "config": {"alert": "${run.error.message}"}}}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.compensated == true)
            #expect(done.error?["step_id"] == "credit")
            #expect(done.deadLetter)
            let steps = try await h.steps(run.id)
            #expect(steps["debit.compensate"]?.output == ["refund": "D1", "because": "step_failed"])
            #expect(steps["reserve.compensate"]?.output == ["release": "H1"])
            #expect(steps["credit.compensate"] == nil, "a step that did not succeed is not compensated")
            #expect(steps["on_failure"]?.output?["alert"]?.stringValue?.contains("beneficiary account closed") == true)
            let order = try await h.events(run.id).filter { $0.type == "step_succeeded" }.compactMap(\.stepID)
            #expect(order.suffix(3) == ["debit.compensate", "reserve.compensate", "on_failure"])
        }
    }

    @Test(arguments: TestDriver.all) func aTimedOutRunIsCompensatedToo(_ driver: TestDriver) async throws {
        // Time is the test's: the run's deadline passes when the test says so, not after ten seconds of waiting that a
        // loaded machine could stretch past the debit.
        let clock = ManualClock()
        try await withEngine(driver, clock: clock) { h in
            let definition = try await h.register(
                """
                {"name": "slow-transfer", "version": "1.0.0", "definition": {"timeout_ms": 10000, "steps": [
                  {"id": "debit", "type": "transform", "config": {"output": {"debit_id": "D9"}},
                   "compensate": {"type": "echo", "config": {"refund": "${steps.debit.output.debit_id}", "why": "${run.error.code}"}}},
                  {"id": "credit", "type": "delay", "depends_on": ["debit"], "config": {"duration_ms": 60000}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            // Once the credit's delay has set its wake-up time, the run only waits: time may move.
            try await waitUntil("the credit's delay is suspended") {
                try await h.events(run.id).contains { $0.type == "step_suspended" && $0.stepID == "credit" }
            }
            #expect(try await h.steps(run.id)["debit"]?.status == .success)
            #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .running)
            clock.advance(by: 9.9)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .running, "not before its deadline")
            clock.advance(by: 0.101)  // past the deadline by a millisecond, the precision of stored instants
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.error?["code"] == "run_timeout")
            #expect(done.compensated == true)
            let steps = try await h.steps(run.id)
            #expect(steps["credit"]?.status == .cancelled)
            #expect(steps["debit.compensate"]?.output == ["refund": "D9", "why": "run_timeout"])
            #expect(try await h.events(run.id).contains { $0.type == "run_timed_out" })
            #expect(try await h.store.taskCount(runID: run.id) == 0)
        }
    }

    @Test(arguments: TestDriver.all) func aTimeoutDuringCompensationLetsItFinish(_ driver: TestDriver) async throws {
        let clock = ManualClock()
        try await withEngine(driver, clock: clock) { h in
            let definition = try await h.register(
                """
                {"name": "slow-undo", "version": "1.0.0", "definition": {"timeout_ms": 15000, "steps": [
                  {"id": "debit", "type": "noop", "compensate": {"type": "delay", "config": {"duration_ms": 17500}}},
                  {"id": "credit", "type": "fail", "depends_on": ["debit"]}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            // The failure started the compensation, a 17.5 s delay; once it has set its wake-up time, the run's deadline
            // and the delay's end are the two tasks left.
            try await waitUntil("the compensation's delay is suspended") {
                try await h.events(run.id).contains { $0.type == "step_suspended" && $0.stepID == "debit.compensate" }
            }
            #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .compensating)
            #expect(try await h.store.taskCount(runID: run.id) == 2)
            clock.advance(by: 15.001)
            try await waitUntil("the deadline was handled") { try await h.store.taskCount(runID: run.id) == 1 }
            #expect(try await h.store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .compensating, "still compensating")
            clock.advance(by: 2.5)
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.error?["step_id"] == "credit", "the first failure stays the run's error")
            #expect(done.compensated == true, "the timeout did not cut the compensation short")
            #expect(try await h.steps(run.id)["debit.compensate"]?.status == .success)
            #expect(try await h.events(run.id).contains { $0.type == "run_timed_out" } == false)
        }
    }

    @Test(arguments: TestDriver.all) func aFailedCompensationIsReported(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "bad-undo", "version": "1.0.0", "definition": {"steps": [
                  {"id": "a", "type": "noop", "compensate": {"type": "echo"}},
                  {"id": "b", "type": "noop", "depends_on": ["a"],
                   "compensate": {"type": "fail", "config": {"message": "ledger offline", "retriable": true},
                                  "retry": {"max_attempts": 2, "initial_interval_ms": 10}}},
                  {"id": "c", "type": "fail", "depends_on": ["b"]}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .failed)
            #expect(done.compensated == false)
            let errors = done.error?["compensation_errors"]?.arrayValue ?? []
            #expect(errors.count == 1)
            #expect(errors.first?["step_id"] == "b.compensate")
            let steps = try await h.steps(run.id)
            #expect(steps["b.compensate"]?.attempt == 2, "the compensation used its own retry policy")
            #expect(steps["a.compensate"]?.status == .success, "the remaining compensations still ran")
        }
    }

    @Test(arguments: TestDriver.all) func continueOnErrorLetsDependentsRun(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "lenient", "version": "1.0.0", "definition": {"steps": [
                  {"id": "optional", "type": "fail", "continue_on_error": true, "config": {"message": "nice to have"}},
                  {"id": "next", "type": "echo", "depends_on": ["optional"], "config": {"previous": "${steps.optional.status}"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: [:])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            let steps = try await h.steps(run.id)
            #expect(steps["optional"]?.status == .failed)
            #expect(steps["optional"]?.error?["message"] == "nice to have")
            #expect(steps["next"]?.output == ["previous": "FAILED"])
        }
    }

    // MARK: operations

    @Test(arguments: TestDriver.all) func retryResumesInPlaceKeepingSuccessfulSteps(_ driver: TestDriver) async throws {
        try await LocalHTTPServer.with(gateRoutes) { remote in
            try await withEngine(driver) { h in
                let definition = try await h.register(
                    """
                    {"name": "resumable", "version": "1.0.0", "definition": {"steps": [
                      {"id": "first", "type": "transform", "config": {"output": {"at": "${run.id}"}}},
                      {"id": "call", "type": "http_request", "depends_on": ["first"], "config": {"url": "\(remote.baseURL)/gate", "method": "POST"}},
                      {"id": "last", "type": "echo", "depends_on": ["call"], "config": {"ok": "${steps.call.output.body.ok}"}}
                    ]}}
                    """
                )
                let run = try await h.engine.start(definition: definition, input: [:])
                let failed = try await h.waitForRun(run.id)
                #expect(failed.status == .failed)
                var letters = try await h.store.deadLetterList(tenantID: defaultTenantID, before: nil, limit: 10)
                #expect(letters.map(\.id) == [run.id])

                remote.set("open")
                _ = try await h.engine.retry(runID: run.id)
                let done = try await h.waitForRun(run.id)
                #expect(done.status == .completed)
                #expect(done.output == ["last": ["ok": true]])
                letters = try await h.store.deadLetterList(tenantID: defaultTenantID, before: nil, limit: 10)
                #expect(letters.isEmpty, "a retried run leaves the dead letters")
                let events = try await h.events(run.id)
                #expect(events.filter { $0.type == "step_succeeded" && $0.stepID == "first" }.count == 1, "successful steps are kept")
                #expect(events.contains { $0.type == "run_resumed" })
                #expect(remote.requests(path: "/gate").count == 2)

                do {
                    _ = try await h.engine.retry(runID: run.id)
                    Issue.record("a completed run cannot be retried")
                } catch let error as WorkflowError {
                    #expect(error.code == .runNotRetryable)
                }
            }
        }
    }

    @Test(arguments: TestDriver.all) func rerunStartsANewRunAndDeadLettersCanBeDismissed(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "picky", "version": "1.0.0", "definition": {"steps": [
                  {"id": "check", "type": "fail", "when": "input.bad", "config": {"message": "bad input"}}
                ]}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: ["bad": true])
            #expect(try await h.waitForRun(run.id).status == .failed)
            let again = try await h.engine.rerun(runID: run.id, input: ["bad": false])
            #expect(again.id != run.id)
            #expect(try await h.waitForRun(again.id).status == .completed)
            #expect(try await h.store.deadLetterDismiss(tenantID: defaultTenantID, runID: run.id))
            #expect(try await h.store.deadLetterList(tenantID: defaultTenantID, before: nil, limit: 10).isEmpty)
            #expect(try await h.store.deadLetterDismiss(tenantID: defaultTenantID, runID: run.id) == false)
        }
    }

    @Test(arguments: TestDriver.all) func idempotencyKeysHold(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "once", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}
                """
            )
            // Concurrent requests with one key create one run.
            let results = try await withThrowingTaskGroup(of: (RunRecord, Bool).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let r = try await h.engine.start(definition: definition, input: ["n": 1], idempotencyKey: "k-1", requestHash: "h1")
                        return (r.run, r.created)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(results.map(\.0.id)).count == 1)
            #expect(results.filter(\.1).count == 1)
            do {
                _ = try await h.engine.start(definition: definition, input: ["n": 2], idempotencyKey: "k-1", requestHash: "h2")
                Issue.record("a reused key with another body must be refused")
            } catch let error as WorkflowError {
                #expect(error.code == .idempotencyKeyReused)
            }
        }
    }
}
