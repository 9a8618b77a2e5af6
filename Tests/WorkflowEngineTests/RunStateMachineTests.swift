import Foundation
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore

/// The run state machine called directly: snapshot in, mutation out, no database, no clock, no sleeps.
///
/// Each case is a definition, a script of what happens to the run, and what the run must look like afterwards. A
/// small in-memory driver (`Sim`) applies each mutation the way the real drivers do, so one case can follow a run
/// from its start to its end.
@Suite struct RunStateMachineTests {
    /// What happens to the run, in order.
    enum Action {
        /// A node claims the task of this step (`previousOwner`: a takeover of a lapsed lease).
        case claim(String, previousOwner: String? = nil)
        case succeed(String, JSONValue = [:])
        case fail(String, code: String = "boom", retriable: Bool = false)
        case suspend(String, untilSeconds: Double, state: JSONValue)
        /// A `sub_workflow` step's worker prepared its child.
        case startChild(String)
        /// The child (or item `index` of a foreach) at `step` finished.
        case childFinished(String, index: Int? = nil, status: RunStatus, output: JSONValue? = nil)
        case signal(String, JSONValue = [:])
        case cancel
        case timeout
        case resume
    }

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var steps: String
        var extra: String = ""
        var input: JSONValue = [:]
        var script: [Action] = []
        var status: RunStatus
        var stepStatus: [String: StepStatus] = [:]
        /// Event types in order (`type` or `type:step`), compared after removing those not listed in `only`.
        var events: [String]? = nil
        var output: JSONValue? = nil
        /// Extra checks on the final state.
        var check: (@Sendable (Sim) throws -> Void)? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "a sequence passes outputs along and completes",
            steps: #"""
                {"id": "a", "type": "echo", "config": {"v": 1}},
                {"id": "b", "type": "echo", "depends_on": ["a"], "config": {"w": "${steps.a.output.v + 1}"}}
                """#,
            script: [.claim("a"), .succeed("a", ["v": 1]), .claim("b"), .succeed("b", ["w": 2])],
            status: .completed,
            stepStatus: ["a": .success, "b": .success],
            events: [
                "run_created", "step_queued:a", "run_started", "step_started:a", "step_succeeded:a", "step_queued:b", "step_started:b",
                "step_succeeded:b", "run_completed",
            ],
            output: ["b": ["w": 2]],
            check: { sim in #expect(sim.steps["b"]?.input == ["w": 2]) }
        ),
        Case(
            name: "a retriable failure is retried after the backoff, with the jitter passed in",
            steps: #"""
                {"id": "a", "type": "echo", "retry": {"max_attempts": 2, "backoff": "exponential", "initial_interval_ms": 1000}}
                """#,
            script: [.claim("a"), .fail("a", retriable: true)],
            status: .running,
            stepStatus: ["a": .queued],
            check: { sim in
                let retry = try #require(sim.events.last { $0.type == "step_retrying" })
                #expect(retry.data["delay_ms"] == 1000)
                #expect(sim.tasks.map(\.availableAt) == [sim.now.addingTimeInterval(1)])
            }
        ),
        Case(
            name: "a retriable failure on the last attempt fails the run",
            steps: #"{"id": "a", "type": "echo", "retry": {"max_attempts": 2}}"#,
            script: [.claim("a"), .fail("a", retriable: true), .claim("a"), .fail("a", retriable: true)],
            status: .failed,
            stepStatus: ["a": .failed],
            check: { sim in
                #expect(sim.steps["a"]?.attempt == 2)
                #expect(sim.run.error?["code"] == "step_failed")
                #expect(sim.run.deadLetter)
                #expect(sim.tasks.isEmpty)
            }
        ),
        Case(
            name: "a failure cancels the parallel branch and never starts dependents",
            steps: #"""
                {"id": "a", "type": "echo"}, {"id": "b", "type": "echo"},
                {"id": "c", "type": "echo", "depends_on": ["a", "b"]}
                """#,
            script: [.claim("a"), .claim("b"), .fail("a")],
            status: .failed,
            stepStatus: ["a": .failed, "b": .cancelled],
            events: ["step_failed:a", "step_cancelled:b", "run_failed"]
        ),
        Case(
            name: "continue_on_error lets dependents run",
            steps: #"""
                {"id": "a", "type": "echo", "continue_on_error": true},
                {"id": "b", "type": "echo", "depends_on": ["a"], "config": {"was": "${steps.a.status}"}}
                """#,
            script: [.claim("a"), .fail("a"), .claim("b"), .succeed("b")],
            status: .completed,
            stepStatus: ["a": .failed, "b": .success],
            check: { sim in #expect(sim.steps["b"]?.input == ["was": "FAILED"]) }
        ),
        Case(
            name: "a false condition skips the step and the skip cascades",
            steps: #"""
                {"id": "a", "type": "echo", "when": "input.go"},
                {"id": "b", "type": "echo", "depends_on": ["a"]}
                """#,
            input: ["go": false],
            status: .completed,
            stepStatus: ["a": .skipped, "b": .skipped],
            events: ["run_created", "step_skipped:a", "step_skipped:b", "run_completed"]
        ),
        Case(
            name: "a switch takes the first matching case and skips the other branches",
            steps: #"""
                {"id": "route", "type": "switch", "config": {"cases": [
                  {"when": "input.amount > 100", "next": ["big"]}, {"when": "true", "next": ["small"]}], "default": ["none"]}},
                {"id": "big", "type": "echo", "depends_on": ["route"]},
                {"id": "small", "type": "echo", "depends_on": ["route"]},
                {"id": "none", "type": "echo", "depends_on": ["route"]}
                """#,
            input: ["amount": 500],
            script: [.claim("big"), .succeed("big")],
            status: .completed,
            stepStatus: ["route": .success, "big": .success, "small": .skipped, "none": .skipped]
        ),
        Case(
            name: "a saga compensates the latest success first, then runs on_failure, then fails",
            steps: #"""
                {"id": "debit", "type": "echo", "compensate": {"type": "echo", "config": {"undo": "debit"}}},
                {"id": "reserve", "type": "echo", "depends_on": ["debit"], "compensate": {"type": "echo"}},
                {"id": "credit", "type": "echo", "depends_on": ["reserve"]}
                """#,
            extra: #", "on_failure": {"type": "echo", "config": {"why": "${run.error.code}"}}"#,
            script: [
                .claim("debit"), .succeed("debit"), .claim("reserve"), .succeed("reserve"), .claim("credit"), .fail("credit"),
                .claim("reserve.compensate"), .succeed("reserve.compensate"), .claim("debit.compensate"), .succeed("debit.compensate"),
                .claim("on_failure"), .succeed("on_failure"),
            ],
            status: .failed,
            stepStatus: [
                "debit": .success, "reserve": .success, "credit": .failed, "reserve.compensate": .success, "debit.compensate": .success,
                "on_failure": .success,
            ],
            events: [
                "step_failed:credit", "run_compensating", "step_queued:reserve.compensate", "step_queued:debit.compensate",
                "step_queued:on_failure", "run_failed",
            ],
            check: { sim in
                #expect(sim.run.compensated == true)
                #expect(sim.steps["on_failure"]?.input == ["why": "step_failed"])
                #expect(sim.steps["debit.compensate"]?.input == ["undo": "debit"])
            }
        ),
        Case(
            name: "a failed compensation is reported in the run's error",
            steps: #"""
                {"id": "a", "type": "echo", "compensate": {"type": "echo"}},
                {"id": "b", "type": "echo", "depends_on": ["a"]}
                """#,
            script: [.claim("a"), .succeed("a"), .claim("b"), .fail("b"), .claim("a.compensate"), .fail("a.compensate", code: "nope")],
            status: .failed,
            check: { sim in
                #expect(sim.run.compensated == false)
                #expect(sim.run.error?["compensation_errors"]?.arrayValue?.first?["step_id"] == "a.compensate")
            }
        ),
        Case(
            name: "a run timeout fails the run, cancels what runs and compensates",
            steps: #"""
                {"id": "a", "type": "echo", "compensate": {"type": "echo"}},
                {"id": "b", "type": "echo", "depends_on": ["a"]}
                """#,
            extra: #", "timeout_ms": 5000"#,
            script: [.claim("a"), .succeed("a"), .claim("b"), .timeout, .claim("a.compensate"), .succeed("a.compensate")],
            status: .failed,
            stepStatus: ["a": .success, "b": .cancelled, "a.compensate": .success],
            events: ["run_timed_out", "step_cancelled:b", "run_compensating", "run_failed"],
            check: { sim in #expect(sim.run.error?["code"] == "run_timeout") }
        ),
        Case(
            name: "cancelling stops queued and executing steps and removes the run's tasks",
            steps: #"{"id": "a", "type": "echo"}, {"id": "b", "type": "echo"}"#,
            extra: #", "timeout_ms": 5000"#,
            script: [.claim("a"), .cancel],
            status: .cancelled,
            stepStatus: ["a": .cancelled, "b": .cancelled],
            check: { sim in
                #expect(sim.tasks.isEmpty, "step and timeout tasks removed")
                #expect(sim.run.deadLetter == false)
                #expect(throws: WorkflowError.self) { try RunStateMachine.cancel(snapshot: sim.snapshot, reason: "again", now: sim.now) }
            }
        ),
        Case(
            name: "a signal completes the step waiting for it",
            steps: #"""
                {"id": "wait", "type": "wait_for_signal", "config": {"signal": "approved", "timeout_ms": 60000}},
                {"id": "after", "type": "echo", "depends_on": ["wait"], "config": {"by": "${steps.wait.output.by}"}}
                """#,
            script: [.signal("approved", ["by": "ann"]), .claim("after"), .succeed("after")],
            status: .completed,
            stepStatus: ["wait": .success, "after": .success],
            events: ["step_waiting:wait", "signal_received", "signal_consumed:wait", "step_succeeded:wait"],
            check: { sim in #expect(sim.steps["after"]?.input == ["by": "ann"]) }
        ),
        Case(
            name: "a waiting step records what it waits for and its timeout task",
            steps: #"{"id": "wait", "type": "wait_for_signal", "config": {"signal": "go", "timeout_ms": 60000}}"#,
            status: .running,
            stepStatus: ["wait": .waiting],
            check: { sim in
                #expect(sim.steps["wait"]?.state == .awaitingSignal(name: "go"))
                #expect(sim.tasks.map(\.availableAt) == [sim.now.addingTimeInterval(60)])
            }
        ),
        Case(
            name: "a signal that arrives before its step is kept for it",
            steps: #"""
                {"id": "first", "type": "echo"},
                {"id": "wait", "type": "wait_for_signal", "depends_on": ["first"], "config": {"signal": "go"}}
                """#,
            script: [.signal("go", ["early": true]), .claim("first"), .succeed("first")],
            status: .completed,
            stepStatus: ["first": .success, "wait": .success],
            check: { sim in
                #expect(sim.steps["wait"]?.output == ["early": true])
                #expect(sim.run.pendingSignals.isEmpty)
            }
        ),
        Case(
            name: "a delay suspends its step and the same attempt resumes at the wake-up time",
            steps: #"{"id": "pause", "type": "delay", "config": {"duration_ms": 2000}}"#,
            script: [.claim("pause"), .suspend("pause", untilSeconds: 2, state: ["wake_at_ms": 2000]), .claim("pause")],
            status: .running,
            stepStatus: ["pause": .executing],
            events: ["step_started:pause", "step_suspended:pause", "step_resumed:pause"],
            check: { sim in
                #expect(sim.steps["pause"]?.attempt == 1)
                #expect(sim.steps["pause"]?.state == .suspended(["wake_at_ms": 2000]))
            }
        ),
        Case(
            name: "a sub_workflow waits for its child and ends with it",
            steps: #"{"id": "child", "type": "sub_workflow", "config": {"workflow": "other"}}"#,
            script: [.claim("child"), .startChild("child"), .childFinished("child", status: .completed, output: ["ok": true])],
            status: .completed,
            stepStatus: ["child": .success],
            events: ["child_run_started:child", "child_run_finished:child", "step_succeeded:child"],
            output: ["child": ["ok": true]]
        ),
        Case(
            name: "a failed child fails its step with a retriable failure",
            steps: #"{"id": "child", "type": "sub_workflow", "config": {"workflow": "other"}, "retry": {"max_attempts": 2}}"#,
            script: [.claim("child"), .startChild("child"), .childFinished("child", status: .failed)],
            status: .running,
            stepStatus: ["child": .queued],
            check: { sim in #expect(sim.events.last { $0.type == "step_retrying" }?.data["error"]?["code"] == "child_run_failed") }
        ),
        Case(
            name: "a foreach creates every item, releases max_concurrency of them and collects when all are done",
            steps: #"""
                {"id": "each", "type": "foreach", "config": {"items": "${input.xs}", "max_concurrency": 2,
                  "steps": [{"id": "one", "type": "echo"}]}}
                """#,
            input: ["xs": [1, 2, 3]],
            script: [
                .childFinished("each", index: 0, status: .completed), .childFinished("each", index: 1, status: .completed),
                .childFinished("each", index: 2, status: .completed),
            ],
            status: .running,
            stepStatus: ["each": .waiting],
            check: { sim in
                #expect(sim.spawned.count == 3)
                #expect(sim.spawned.map { $0.initial.newTasks.first?.kind } == [.step, .step, .startRun], "the third is parked")
                #expect(sim.released.count == 1, "the first finished item releases the third")
                guard case .foreach(let progress)? = sim.steps["each"]?.state else {
                    Issue.record("no foreach progress")
                    return
                }
                #expect(progress.done == 3 && progress.phase == .collect)
                #expect(sim.tasks.contains { $0.stepID == "each" && $0.kind == .step }, "the step runs once more to collect")
            }
        ),
        Case(
            name: "a failed foreach item fails the step and cancels the other items",
            steps: #"""
                {"id": "each", "type": "foreach", "config": {"items": [1, 2, 3], "max_concurrency": 3,
                  "steps": [{"id": "one", "type": "echo"}]}}
                """#,
            script: [.childFinished("each", index: 1, status: .failed)],
            status: .failed,
            stepStatus: ["each": .failed],
            check: { sim in
                #expect(sim.tasks.contains { $0.kind == .cancelChildren })
                #expect(sim.steps["each"]?.error?["code"] == "item_failed")
            }
        ),
        Case(
            name: "retrying a failed run keeps successes and gives a refused step a new idempotency key",
            steps: #"""
                {"id": "a", "type": "echo"},
                {"id": "b", "type": "echo", "depends_on": ["a"]}
                """#,
            script: [.claim("a"), .succeed("a"), .claim("b"), .fail("b", code: "http_error", retriable: false), .resume],
            status: .running,
            stepStatus: ["a": .success, "b": .queued],
            check: { sim in
                #expect(sim.run.keyGenerations == ["b": 1], "a definitive refusal settles the effect: a new key")
                #expect(sim.events.last { $0.type == "run_resumed" }?.data["steps_reset"] == ["b"])
            }
        ),
        Case(
            name: "a claim after a lapsed lease records the takeover",
            steps: #"{"id": "a", "type": "echo"}"#,
            script: [.claim("a"), .claim("a", previousOwner: "node-dead")],
            status: .running,
            check: { sim in
                #expect(sim.steps["a"]?.attempt == 2)
                #expect(sim.events.last?.data["taken_over_from"] == "node-dead")
            }
        ),
        Case(
            name: "an output too large to store fails the step",
            steps: #"{"id": "a", "type": "echo"}"#,
            script: [.claim("a"), .succeed("a", ["big": .string(String(repeating: "x", count: 2_000_000))])],
            status: .failed,
            check: { sim in #expect(sim.steps["a"]?.error?["code"] == "output_too_large") }
        ),
    ]

    @Test(arguments: cases) func transitions(_ c: Case) throws {
        var sim = try Sim(steps: c.steps, extra: c.extra, input: c.input)
        for action in c.script { try sim.perform(action) }
        #expect(sim.run.status == c.status)
        for (id, status) in c.stepStatus { #expect(sim.steps[id]?.status == status, "step \(id)") }
        if let expected = c.events {
            let only = Set(expected)
            let seen = sim.events.map { e in e.stepID.map { "\(e.type):\($0)" } ?? e.type }.filter(only.contains)
            #expect(seen == expected)
        }
        if let output = c.output { #expect(sim.run.output == output) }
        try c.check?(sim)
    }

    @Test func dispatchLeasesAtMostItsCapacityAndQueuesTheRest() throws {
        let plan = try Sim.plan(#"{"id": "a", "type": "echo"}, {"id": "b", "type": "echo"}, {"id": "c", "type": "echo"}"#)
        let run = Sim.newRun()
        let dispatch = RunStateMachine.Dispatch(owner: "me", leaseExpiresAt: Sim.t0.addingTimeInterval(30), capacity: 2)
        let mutation = RunStateMachine.start(run: run, plan: plan, now: Sim.t0, dispatch: dispatch)
        #expect(mutation.newTasks.filter { $0.leaseOwner == "me" }.count == 2)
        #expect(mutation.newTasks.filter { $0.leaseOwner == nil }.count == 1)
        #expect(mutation.steps.filter { $0.status == .executing }.count == 2)
    }
}

/// An in-memory driver: applies mutations to one run the way the real drivers do.
struct Sim: Sendable {
    static let t0 = Date(timeIntervalSince1970: 1_000_000)
    let plan: WorkflowPlan
    var snapshot: RunSnapshot
    var tasks: [NewTask] = []
    var events: [NewEvent] = []
    var spawned: [RunInsertParams] = []
    var released: [String] = []
    var now = Sim.t0

    var run: RunRecord { snapshot.run }
    var steps: [String: StepRunRecord] { snapshot.steps }

    static func plan(_ steps: String, extra: String = "") throws -> WorkflowPlan {
        let text = #"{"name": "t", "version": "1.0.0", "definition": {"steps": ["# + steps + "]" + extra + "}}"
        return try WorkflowDocument.validate(try WorkflowDocument.decode(Data(text.utf8), format: .json)).1
    }

    static func newRun(input: JSONValue = [:]) -> RunRecord {
        RunRecord(
            id: "run-1",
            tenantID: defaultTenantID,
            definitionID: "def-1",
            workflowName: "t",
            workflowVersion: "1.0.0",
            status: .pending,
            input: input,
            createdAt: t0,
            updatedAt: t0
        )
    }

    init(steps: String, extra: String, input: JSONValue) throws {
        plan = try Self.plan(steps, extra: extra)
        let run = Self.newRun(input: input)
        snapshot = RunSnapshot(run: run, steps: [:], nextEventSeq: 1)
        let mutation = RunStateMachine.start(run: run, plan: plan, now: now)
        apply(mutation)
    }

    mutating func apply(_ m: RunMutation) {
        if let run = m.run { snapshot.run = run }
        for id in m.deleteSteps { snapshot.steps[id] = nil }
        for step in m.steps { snapshot.steps[step.stepID] = step }
        switch m.deleteTasks {
        case .none: break
        case .all: tasks.removeAll { TaskKind.removedWithRun.contains($0.kind.rawValue) }
        case .steps(let ids): tasks.removeAll { $0.stepID.map(ids.contains) ?? false }
        }
        tasks += m.newTasks
        events += m.events
        spawned += m.spawn
        released += m.releaseRuns
    }

    mutating func perform(_ action: RunStateMachineTests.Action) throws {
        now = now.addingTimeInterval(1)
        switch action {
        case .claim(let stepID, let previousOwner):
            let index = try #require(tasks.firstIndex { $0.stepID == stepID && $0.kind == .step }, "no task for \(stepID)")
            let task = TaskRecord(
                id: Int64(index),
                tenantID: run.tenantID,
                runID: run.id,
                stepID: stepID,
                kind: .step,
                availableAt: tasks[index].availableAt,
                priority: 0,
                leaseOwner: previousOwner,
                leaseExpiresAt: nil,
                leaseToken: 1
            )
            apply(RunStateMachine.claim(snapshot: snapshot, task: task, owner: "node-a", now: now))
        case .succeed(let stepID, let output): complete(stepID, .success(output))
        case .fail(let stepID, let code, let retriable):
            complete(stepID, .failure(StepFailure(code: code, message: code, retriable: retriable)))
        case .suspend(let stepID, let seconds, let state):
            tasks.removeAll { $0.stepID == stepID && $0.kind == .step }  // the claimed task is done
            complete(stepID, .suspend(until: Self.t0.addingTimeInterval(seconds), state: state))
        case .startChild(let stepID):
            let child = RunRecord(
                id: "child-1",
                tenantID: run.tenantID,
                definitionID: "def-2",
                workflowName: "other",
                workflowVersion: "1.0.0",
                status: .pending,
                input: [:],
                parentRunID: run.id,
                parentStepID: stepID,
                createdAt: now,
                updatedAt: now
            )
            let childPlan = try Self.plan(#"{"id": "x", "type": "echo"}"#)
            complete(stepID, .startChild(ChildRun(run: child, plan: childPlan)))
        case .childFinished(let stepID, let index, let status, let output):
            var child = try #require(
                spawned.first { $0.run.parentStepID == stepID && $0.run.itemIndex == index }?.run,
                "no child of \(stepID) at \(index.map(String.init) ?? "-")"
            )
            child.status = status
            child.output = output
            apply(RunStateMachine.childFinished(snapshot: snapshot, plan: plan, child: child, now: now, dispatch: nil, random: 0))
        case .signal(let name, let payload):
            apply(try RunStateMachine.signal(snapshot: snapshot, plan: plan, name: name, payload: payload, now: now, dispatch: nil))
        case .cancel:
            apply(try RunStateMachine.cancel(snapshot: snapshot, reason: "test", now: now))
        case .timeout:
            apply(RunStateMachine.timeout(snapshot: snapshot, plan: plan, deadline: now, now: now, dispatch: nil))
        case .resume:
            apply(try RunStateMachine.resume(snapshot: snapshot, plan: plan, now: now, dispatch: nil))
        }
    }

    private mutating func complete(_ stepID: String, _ result: StepResult) {
        tasks.removeAll { $0.stepID == stepID && $0.kind == .step && $0.availableAt <= now }  // the claimed task is done
        apply(RunStateMachine.complete(snapshot: snapshot, plan: plan, stepID: stepID, result: result, now: now, dispatch: nil, random: 0))
    }
}
