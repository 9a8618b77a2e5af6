import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The behaviour every storage driver must show, written once and run against each driver
/// (as river's `riverdrivertest` and Temporal's shared SQL plugin tests do).
///
/// ```swift
/// @Test(arguments: StoreContract.cases)
/// func sqlite(_ c: StoreContract.Case) async throws { try await withSQLiteStore { try await c.run($0) } }
/// ```
/// Each case gets a fresh, empty store.
public enum StoreContract {
    /// One named behaviour.
    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        let body: @Sendable (any WorkflowStore) async throws -> Void

        public var description: String { name }

        public func run(_ store: any WorkflowStore) async throws { try await body(store) }
    }

    /// A failed expectation of the contract.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static let cases: [Case] = [
        Case(name: "definitions: insert, find, list, same content is existing, other content conflicts", body: definitions),
        Case(name: "runs: insert with first transition, read back, list with filters and cursor", body: runs),
        Case(name: "transitions: apply, number events, fence stale claims, reject without writing", body: transitions),
        Case(name: "claim: available only, priority then age, lease, expired leases taken over", body: claims),
        Case(name: "leases: renew per owner, release, expire others", body: leases),
        Case(name: "claim: writes of onClaim are applied, finished work is not returned", body: claimWrites),
        Case(name: "fencing: a worker whose lease was taken over cannot record its result", body: fencing),
        Case(name: "run trees: descendants counted and listed by their root, unfinished only, bounded", body: trees),
        Case(name: "definitions: retire and activate, delete only without runs, tenants isolated", body: definitionLifecycle),
        Case(name: "queue: steps a transition queues are interleaved with newcomers (fair_at)", body: fairQueue),
        Case(name: "children: by parent and step, unfinished only, in item order", body: children),
        Case(name: "idempotency keys: unique per tenant, found, expired by age", body: idempotencyKeys),
        Case(name: "dead letters: listed newest first per tenant, dismissed once", body: deadLetters),
        Case(name: "cluster: node heartbeats upsert and list held tasks, stale nodes removed, leader lease", body: cluster),
    ]

    public static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        if !condition { throw Failure(description: "StoreContract line \(line): \(message())") }
    }

    // MARK: fixtures (public so driver-specific tests can use them)

    public static func definition(_ name: String = "wf", version: String = "1.0.0", checksum: String = "c1", at: Date = t0) -> DefinitionRecord {
        DefinitionRecord(
            id: RecordID.make(now: at),
            tenantID: defaultTenantID,
            name: name,
            version: version,
            description: "d",
            spec: ["steps": [["id": "a", "type": "noop"]]],
            checksum: checksum,
            createdBy: nil,
            createdAt: at
        )
    }

    static func insertDefinition(_ store: any WorkflowStore, _ record: DefinitionRecord) async throws -> DefinitionRecord {
        guard case .inserted(let r) = try await store.definitionInsert(DefinitionInsertParams(record: record)) else {
            throw Failure(description: "definition \(record.name) \(record.version) was not inserted")
        }
        return r
    }

    /// A PENDING run with one QUEUED step `a` and its available task.
    static func insertRun(
        _ store: any WorkflowStore,
        definition: DefinitionRecord,
        at: Date,
        priority: Int = 0,
        steps: [String] = ["a"]
    ) async throws -> (RunRecord, [TaskRecord]) {
        let run = RunRecord(
            id: RecordID.make(now: at),
            tenantID: defaultTenantID,
            definitionID: definition.id,
            workflowName: definition.name,
            workflowVersion: definition.version,
            status: .pending,
            input: ["k": 1],
            priority: priority,
            createdAt: at,
            updatedAt: at
        )
        let initial = RunMutation(
            steps: steps.map { StepRunRecord(runID: run.id, stepID: $0, status: .queued, input: ["x": 1], updatedAt: at) },
            events: [NewEvent("run_created")] + steps.map { NewEvent("step_queued", stepID: $0) },
            newTasks: steps.map { NewTask(stepID: $0, kind: .step, availableAt: at, priority: priority) }
        )
        let tasks = try await store.runInsert([RunInsertParams(run: run, initial: initial)], now: at)
        return (run, tasks[0])
    }

    /// A claim that marks the step EXECUTING and records an event, as the engine does.
    static func claim(
        _ store: any WorkflowStore,
        owner: String,
        now: Date,
        limit: Int = 10,
        lease: TimeInterval = 30
    ) async throws
        -> TaskClaimResult
    {
        try await store.taskClaim(
            TaskClaimParams(
                owner: owner,
                limit: limit,
                leaseExpiresAt: now.addingTimeInterval(lease),
                now: now,
                onClaim: { snapshot, task in
                    guard let id = task.stepID, var step = snapshot.steps[id] else { return RunMutation() }
                    step.status = .executing
                    step.attempt += 1
                    step.updatedAt = now
                    var data: [String: JSONValue] = ["owner": .string(owner)]
                    if let previous = task.leaseOwner { data["taken_over_from"] = .string(previous) }
                    return RunMutation(steps: [step], events: [NewEvent("step_started", stepID: id, data: .object(data))])
                }
            )
        )
    }

    // MARK: cases

    static func definitions(_ store: any WorkflowStore) async throws {
        let v1 = try await insertDefinition(store, definition(version: "1.0.0", at: t0))
        let v2 = try await insertDefinition(store, definition(version: "1.1.0", at: t0.addingTimeInterval(1)))
        _ = try await insertDefinition(store, definition("other", at: t0.addingTimeInterval(2)))

        switch try await store.definitionInsert(DefinitionInsertParams(record: definition(version: "1.0.0", checksum: "c1"))) {
        case .existing(let r): try expect(r.id == v1.id, "same content returns the existing record")
        default: throw Failure(description: "same name, version and checksum must be .existing")
        }
        switch try await store.definitionInsert(DefinitionInsertParams(record: definition(version: "1.0.0", checksum: "c2"))) {
        case .conflict(let r): try expect(r.id == v1.id, "conflict reports the existing record")
        default: throw Failure(description: "same name and version with another checksum must be .conflict")
        }

        let got = try await store.definitionGet(tenantID: defaultTenantID, id: v2.id)
        try expect(got == v2, "definitionGet returns what was inserted: \(String(describing: got))")
        try expect(try await store.definitionGet(tenantID: "other-tenant", id: v2.id) == nil, "tenants are isolated")
        try expect(
            Set(try await store.definitionVersions(tenantID: defaultTenantID, name: "wf").map(\.version)) == ["1.0.0", "1.1.0"],
            "definitionVersions lists every version of a name"
        )

        let first = try await store.definitionList(DefinitionListParams(limit: 2))
        try expect(first.map(\.name) == ["other", "wf"] && first[1].version == "1.1.0", "newest first: \(first.map(\.version))")
        let second = try await store.definitionList(DefinitionListParams(limit: 2, after: first.last?.id))
        try expect(second.map(\.id) == [v1.id], "the cursor continues after the last id")
        try expect(try await store.definitionList(DefinitionListParams(name: "other")).count == 1, "name filter")
    }

    static func runs(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let d2 = try await insertDefinition(store, definition("second"))
        var ids: [String] = []
        for i in 0..<5 {
            let (run, tasks) = try await insertRun(store, definition: i == 4 ? d2 : d, at: t0.addingTimeInterval(Double(i)))
            try expect(tasks.count == 1 && tasks[0].leaseOwner == nil && tasks[0].stepID == "a", "the first transition's task is returned")
            ids.append(run.id)
        }
        let got = try await store.runGet(tenantID: defaultTenantID, id: ids[0])
        try expect(got?.input == ["k": 1] && got?.status == .pending && got?.createdAt == t0, "runGet returns the run")
        try expect(try await store.runGet(tenantID: "x", id: ids[0]) == nil, "tenants are isolated")
        let steps = try await store.stepList(runID: ids[0])
        try expect(steps.count == 1 && steps[0].status == .queued && steps[0].input == ["x": 1], "steps were written")
        let events = try await store.eventList(runID: ids[0], afterSeq: 0, limit: 10)
        try expect(events.map(\.seq) == [1, 2] && events.map(\.type) == ["run_created", "step_queued"], "events numbered from 1")
        try expect(try await store.eventList(runID: ids[0], afterSeq: 1, limit: 10).map(\.seq) == [2], "afterSeq pages events")

        let page1 = try await store.runList(RunListParams(limit: 2))
        try expect(page1.map(\.id) == [ids[4], ids[3]], "runs newest first")
        let page2 = try await store.runList(RunListParams(limit: 2, before: page1.last?.id))
        try expect(page2.map(\.id) == [ids[2], ids[1]], "the cursor continues before the last id")
        try expect(try await store.runList(RunListParams(definitionIDs: [d2.id])).map(\.id) == [ids[4]], "definition filter")
        try expect(try await store.runList(RunListParams(definitionIDs: [])).isEmpty, "empty definition filter matches nothing")
        try expect(try await store.runList(RunListParams(status: .completed)).isEmpty, "status filter")
        try expect(try await store.runList(RunListParams(status: .pending)).count == 5, "status filter")
    }

    static func transitions(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let (run, _) = try await insertRun(store, definition: d, at: t0)
        let claimed = try await claim(store, owner: "n1", now: t0)
        try expect(claimed.claimed.count == 1, "the task is claimed")
        let task = claimed.claimed[0].task
        try expect(task.leaseOwner == "n1" && task.leaseToken == 1, "the claim leases the task with a new token")

        // A stale fence (an older token) is refused and writes nothing.
        let stale = RunTransitionRequest(runID: run.id, fence: TaskFence(taskID: task.id, leaseToken: task.leaseToken - 1)) { _ in
            throw Failure(description: "decide must not be called for a fenced request")
        }
        // decide throwing rejects only its own request.
        let rejected = RunTransitionRequest(runID: run.id) { _ in throw Failure(description: "no") }
        let t1 = t0.addingTimeInterval(1)
        let good = RunTransitionRequest(runID: run.id, fence: task.fence) { snapshot in
            var r = snapshot.run
            r.status = .completed
            r.output = ["done": true]
            r.completedAt = t1
            var s = snapshot.steps["a"]!
            s.status = .success
            s.output = ["ok": 1]
            return RunMutation(run: r, steps: [s], events: [NewEvent("step_succeeded", stepID: "a"), NewEvent("run_completed")])
        }
        let outcomes = try await store.runTransitions([stale, rejected, good], now: t1)
        guard case .fenced = outcomes[0] else { throw Failure(description: "a stale token must be fenced, got \(outcomes[0])") }
        guard case .rejected = outcomes[1] else { throw Failure(description: "a throwing decide must be rejected, got \(outcomes[1])") }
        guard case .applied = outcomes[2] else { throw Failure(description: "the current claim must apply, got \(outcomes[2])") }

        let after = try await store.runGet(tenantID: defaultTenantID, id: run.id)
        try expect(after?.status == .completed && after?.output == ["done": true] && after?.completedAt == t1, "the run was updated")
        try expect(try await store.stepList(runID: run.id).first?.output == ["ok": 1], "the step was updated")
        let types = try await store.eventList(runID: run.id, afterSeq: 0, limit: 100).map(\.type)
        try expect(types == ["run_created", "step_queued", "step_started", "step_succeeded", "run_completed"], "events appended in order: \(types)")
        try expect(try await store.taskCount(runID: run.id) == 0, "the fenced task was deleted with the transition")

        // The same fence again (a duplicate completion) is refused: the task no longer exists.
        let duplicate = try await store.runTransitions([RunTransitionRequest(runID: run.id, fence: task.fence) { _ in RunMutation() }], now: t1)
        guard case .fenced = duplicate[0] else { throw Failure(description: "a duplicate completion must be fenced") }
        let missing = try await store.runTransitions([RunTransitionRequest(runID: "nope") { _ in RunMutation() }], now: t1)
        guard case .runNotFound = missing[0] else { throw Failure(description: "an unknown run must be runNotFound") }

        // Inserting a task leased to an owner (direct dispatch) returns it with its token.
        let (run2, _) = try await insertRun(store, definition: d, at: t1)
        let direct = try await store.runTransitions(
            [
                RunTransitionRequest(runID: run2.id) { _ in
                    RunMutation(
                        deleteTasks: .all,
                        newTasks: [NewTask(stepID: "b", kind: .step, availableAt: t1, leaseOwner: "n1", leaseExpiresAt: t1.addingTimeInterval(30))]
                    )
                }
            ],
            now: t1
        )
        guard case .applied(_, let tasks) = direct[0], tasks.count == 1, tasks[0].leaseOwner == "n1", tasks[0].leaseToken >= 1 else {
            throw Failure(description: "a leased new task must come back with its owner and token")
        }
        try expect(try await store.taskCount(runID: run2.id) == 1, "deleteTasks .all removed the old task before inserting")
        try expect(try await claim(store, owner: "n2", now: t1).claimed.isEmpty, "a task leased at insert is not claimable")
    }

    static func claims(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let (low, _) = try await insertRun(store, definition: d, at: t0, priority: 0)
        let (high, _) = try await insertRun(store, definition: d, at: t0.addingTimeInterval(1), priority: 5)
        let (later, _) = try await insertRun(store, definition: d, at: t0.addingTimeInterval(2), priority: 0)
        // A task available only in the future.
        let future = t0.addingTimeInterval(100)
        let (timer, _) = try await insertRun(store, definition: d, at: t0.addingTimeInterval(3))
        _ = try await store.runTransitions(
            [
                RunTransitionRequest(runID: timer.id) { _ in
                    RunMutation(deleteTasks: .all, newTasks: [NewTask(stepID: "a", kind: .step, availableAt: future)])
                }
            ],
            now: t0
        )

        let now = t0.addingTimeInterval(10)
        let first = try await claim(store, owner: "n1", now: now, limit: 2)
        try expect(first.claimed.map(\.run.id) == [high.id, low.id], "priority first, then oldest: \(first.claimed.map(\.run.id))")
        try expect(first.claimed.allSatisfy { $0.step?.status == .executing && $0.step?.attempt == 1 }, "claimed steps come back as claimed")
        let second = try await claim(store, owner: "n2", now: now, limit: 10)
        try expect(second.claimed.map(\.run.id) == [later.id], "leased tasks are skipped; future tasks wait")
        try expect(
            second.nextAvailableAt == future || (second.nextAvailableAt.map { $0 <= future } ?? false),
            "nextAvailableAt tells when to look again"
        )
        try expect(try await claim(store, owner: "n2", now: now).claimed.isEmpty, "nothing else is available")

        // After n1's lease expires, another node takes its tasks over, with a new token.
        let expired = now.addingTimeInterval(31)
        let takeover = try await claim(store, owner: "n3", now: expired, limit: 10)
        let taken = Set(takeover.claimed.map(\.run.id))
        try expect(taken.isSuperset(of: [high.id, low.id]), "expired leases are claimable: \(taken)")
        for c in takeover.claimed where c.run.id == high.id {
            try expect(c.task.leaseOwner == "n3" && c.task.leaseToken == 2, "takeover re-leases with a new token")
            try expect(c.step?.attempt == 2, "the engine's onClaim saw the step again")
        }
        let events = try await store.eventList(runID: high.id, afterSeq: 0, limit: 100)
        try expect(events.last?.data["taken_over_from"] == "n1", "onClaim saw the task's previous owner")
        let timerClaim = try await claim(store, owner: "n1", now: future, limit: 10)
        try expect(timerClaim.claimed.map(\.run.id).contains(timer.id), "future tasks become available at their time")
    }

    static func leases(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        for i in 0..<3 { _ = try await insertRun(store, definition: d, at: t0.addingTimeInterval(Double(i) / 1000 - 1)) }
        let mine = try await claim(store, owner: "n1", now: t0, limit: 2, lease: 10)
        let theirs = try await claim(store, owner: "n2", now: t0, limit: 1, lease: 10)
        try expect(mine.claimed.count == 2 && theirs.claimed.count == 1, "claimed 2 and 1")

        let renewedAt = t0.addingTimeInterval(8)
        let held = try await store.leaseRenew(LeaseRenewParams(owner: "n1", leaseExpiresAt: renewedAt.addingTimeInterval(10), now: renewedAt))
        try expect(held == Set(mine.claimed.map(\.task.id)), "renew returns the ids the owner holds")
        // At t0+12 n2's lease has expired but n1's was renewed.
        let at12 = try await claim(store, owner: "n3", now: t0.addingTimeInterval(12), limit: 10)
        try expect(at12.claimed.map(\.task.id) == theirs.claimed.map(\.task.id), "only the unrenewed lease is taken over")
        let heldAfter = try await store.leaseRenew(
            LeaseRenewParams(owner: "n2", leaseExpiresAt: t0.addingTimeInterval(40), now: t0.addingTimeInterval(12))
        )
        try expect(heldAfter.isEmpty, "a node learns at its heartbeat that it lost its tasks")

        try await store.leaseRelease(owner: "n1", taskIDs: [mine.claimed[0].task.id])
        let released = try await claim(store, owner: "n4", now: t0.addingTimeInterval(13), limit: 10)
        try expect(released.claimed.map(\.task.id) == [mine.claimed[0].task.id], "a released task is claimable at once")

        let expiredCount = try await store.leaseExpireOthers(owner: "n4", now: t0.addingTimeInterval(14))
        try expect(expiredCount == 2, "every lease of other owners expires (n1's second, n3's): \(expiredCount)")
        let recovered = try await claim(store, owner: "n4", now: t0.addingTimeInterval(14), limit: 10)
        try expect(recovered.claimed.count == 2, "expired leases are claimable at once")
    }

    static func fencing(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let (run, _) = try await insertRun(store, definition: d, at: t0)
        let slow = try await claim(store, owner: "slow-node", now: t0, lease: 5).claimed[0].task
        // slow-node stalls past its lease; fast-node takes the task over.
        let fast = try await claim(store, owner: "fast-node", now: t0.addingTimeInterval(6), lease: 5).claimed[0].task
        try expect(fast.id == slow.id && fast.leaseToken == slow.leaseToken + 1, "the takeover re-leases the same task")
        func complete(_ task: TaskRecord, by node: String) -> RunTransitionRequest {
            RunTransitionRequest(runID: run.id, fence: task.fence) { snapshot in
                var step = snapshot.steps["a"]!
                step.status = .success
                step.output = ["by": .string(node)]
                return RunMutation(steps: [step], events: [NewEvent("step_succeeded", stepID: "a", data: ["by": .string(node)])])
            }
        }
        let late = try await store.runTransitions([complete(slow, by: "slow-node")], now: t0.addingTimeInterval(7))
        guard case .fenced = late[0] else { throw Failure(description: "the stalled worker's result must be refused, got \(late[0])") }
        let current = try await store.runTransitions([complete(fast, by: "fast-node")], now: t0.addingTimeInterval(8))
        guard case .applied = current[0] else { throw Failure(description: "the current owner's result must apply, got \(current[0])") }
        try expect(try await store.stepList(runID: run.id).first?.output == ["by": "fast-node"], "the current owner's result is the one recorded")
        let successes = try await store.eventList(runID: run.id, afterSeq: 0, limit: 100).filter { $0.type == "step_succeeded" }
        try expect(successes.count == 1, "the completion is recorded exactly once")
    }

    static func claimWrites(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let (run, _) = try await insertRun(store, definition: d, at: t0)
        // An onClaim that finishes the run (as a run timeout does) deletes the task: it is not returned.
        let result = try await store.taskClaim(
            TaskClaimParams(
                owner: "n1",
                limit: 10,
                leaseExpiresAt: t0.addingTimeInterval(30),
                now: t0,
                onClaim: { snapshot, _ in
                    var r = snapshot.run
                    r.status = .failed
                    return RunMutation(run: r, events: [NewEvent("run_timed_out")], deleteTasks: .all)
                }
            )
        )
        try expect(result.claimed.isEmpty, "work the claim finished is not handed out")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: run.id)?.status == .failed, "onClaim's writes were applied")
        try expect(try await store.taskCount(runID: nil) == 0, "the task is gone")
    }

    static func trees(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let (root, _) = try await insertRun(store, definition: d, at: t0)
        let (other, _) = try await insertRun(store, definition: d, at: t0)
        var children: [RunInsertParams] = []
        for i in 0..<4 {
            let child = RunRecord(
                id: RecordID.make(now: t0.addingTimeInterval(Double(i))),
                tenantID: defaultTenantID,
                definitionID: d.id,
                workflowName: d.name,
                workflowVersion: d.version,
                status: i == 0 ? .completed : .pending,
                input: [:],
                parentRunID: root.id,
                rootRunID: root.id,
                createdAt: t0,
                updatedAt: t0
            )
            children.append(RunInsertParams(run: child, initial: RunMutation(events: [NewEvent("run_created")])))
        }
        _ = try await store.runInsert(children, now: t0)
        try expect(try await store.runTreeCount(rootRunID: root.id) == 4, "the root's descendants are counted")
        try expect(try await store.runTreeCount(rootRunID: other.id) == 0, "another tree is empty")
        let unfinished = try await store.runTreeUnfinished(rootRunID: root.id, limit: 10)
        try expect(Set(unfinished.map(\.id)) == Set(children.dropFirst().map(\.run.id)), "unfinished descendants only")
        try expect(try await store.runTreeUnfinished(rootRunID: root.id, limit: 2).count == 2, "bounded by the limit")
    }

    static func definitionLifecycle(_ store: any WorkflowStore) async throws {
        let used = try await insertDefinition(store, definition(version: "1.0.0"))
        let unused = try await insertDefinition(store, definition(version: "2.0.0"))
        try expect(used.status == .active, "a new version is active")
        let retired = try await store.definitionSetStatus(tenantID: defaultTenantID, id: used.id, status: .retired)
        try expect(retired?.status == .retired, "retire returns the record: \(String(describing: retired))")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: used.id)?.status == .retired, "retired is stored")
        try expect(try await store.definitionSetStatus(tenantID: "other", id: used.id, status: .active) == nil, "tenants are isolated")
        try expect(try await store.definitionSetStatus(tenantID: defaultTenantID, id: "missing", status: .active) == nil, "missing")
        try expect(
            try await store.definitionSetStatus(tenantID: defaultTenantID, id: used.id, status: .active)?.status == .active,
            "activate"
        )

        _ = try await insertRun(store, definition: used, at: t0)
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: used.id) == .inUse(runs: 1), "a version with runs stays")
        try expect(try await store.definitionDelete(tenantID: "other", id: unused.id) == .notFound, "tenants are isolated")
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: unused.id) == .deleted, "an unused version is erased")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: unused.id) == nil, "and is gone")
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: unused.id) == .notFound, "twice is not found")
    }

    static func fairQueue(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        // A wide run queues 100 steps at once; a newcomer arrives a second later.
        let burst = RunMutation.queueBurst
        let (wide, _) = try await insertRun(store, definition: d, at: t0, steps: (0..<100).map { "s\($0)" })
        let (newcomer, _) = try await insertRun(store, definition: d, at: t0.addingTimeInterval(1))
        let first = try await claim(store, owner: "n1", now: t0.addingTimeInterval(2), limit: burst + 2)
        let order = first.claimed.map { $0.run.id == wide.id ? "wide" : "new" }
        try expect(
            order == Array(repeating: "wide", count: burst) + ["new", "wide"],
            "the newcomer waits for the wide run's first burst, not for its 100 steps: \(order)"
        )
        let rest = try await claim(store, owner: "n1", now: t0.addingTimeInterval(2), limit: 100)
        try expect(
            rest.claimed.count == 100 - burst - 1 && rest.claimed.allSatisfy { $0.run.id == newcomer.id || $0.run.id == wide.id },
            "the wide run keeps its places"
        )
        _ = newcomer
    }

    static func plainRun(
        _ d: DefinitionRecord,
        at: Date,
        tenant: String = defaultTenantID,
        status: RunStatus = .pending,
        key: String? = nil,
        parent: String? = nil,
        step: String? = nil,
        item: Int? = nil,
        deadLetter: Bool = false
    ) -> RunInsertParams {
        let run = RunRecord(
            id: RecordID.make(now: at),
            tenantID: tenant,
            definitionID: d.id,
            workflowName: d.name,
            workflowVersion: d.version,
            status: status,
            input: [:],
            idempotencyKey: key,
            requestHash: key.map { "h-" + $0 },
            parentRunID: parent,
            parentStepID: step,
            itemIndex: item,
            deadLetter: deadLetter,
            rootRunID: parent,
            createdAt: at,
            updatedAt: at
        )
        return RunInsertParams(run: run, initial: RunMutation(events: [NewEvent("run_created")]))
    }

    static func children(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let parent = plainRun(d, at: t0)
        let kids = [
            plainRun(d, at: t0.addingTimeInterval(3), parent: parent.run.id, step: "each", item: 1),
            plainRun(d, at: t0.addingTimeInterval(2), status: .completed, parent: parent.run.id, step: "each", item: 0),
            plainRun(d, at: t0.addingTimeInterval(1), parent: parent.run.id, step: "call"),
        ]
        _ = try await store.runInsert([parent] + kids, now: t0)
        let all = try await store.runChildren(parentRunID: parent.run.id, stepID: nil, unfinishedOnly: false)
        try expect(all.count == 3, "every child: \(all.count)")
        let items = try await store.runChildren(parentRunID: parent.run.id, stepID: "each", unfinishedOnly: false)
        try expect(items.map(\.itemIndex) == [0, 1], "one step's children in item order: \(items.map(\.itemIndex))")
        let open = try await store.runChildren(parentRunID: parent.run.id, stepID: "each", unfinishedOnly: true)
        try expect(open.map(\.id) == [kids[0].run.id], "unfinished only")
        try expect(try await store.runChildren(parentRunID: kids[0].run.id, stepID: nil, unfinishedOnly: false).isEmpty, "no grandchildren")
    }

    static func idempotencyKeys(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let first = plainRun(d, at: t0, key: "k1")
        _ = try await store.runInsert([first], now: t0)
        do {
            _ = try await store.runInsert([plainRun(d, at: t0.addingTimeInterval(1), key: "k1")], now: t0)
            throw Failure(description: "a second run with the same key in the same tenant must be refused")
        } catch let error as WorkflowError {
            try expect(error.code == .idempotencyKeyTaken, "the refusal says the key is taken: \(error.code.rawValue)")
        }
        _ = try await store.runInsert([plainRun(d, at: t0.addingTimeInterval(1), tenant: "other", key: "k1")], now: t0)
        try expect(try await store.runFindByIdempotencyKey(tenantID: defaultTenantID, key: "k1")?.id == first.run.id, "found by key")
        try expect(try await store.runFindByIdempotencyKey(tenantID: defaultTenantID, key: "k2") == nil, "unknown key")
        try expect(try await store.idempotencyExpire(before: t0) == 0, "nothing older than t0")
        try expect(try await store.idempotencyExpire(before: t0.addingTimeInterval(0.5)) == 1, "the first key expired")
        try expect(try await store.runFindByIdempotencyKey(tenantID: defaultTenantID, key: "k1") == nil, "and is free again")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: first.run.id) != nil, "the run itself stays")
        let second = plainRun(d, at: t0.addingTimeInterval(2), key: "k1")
        _ = try await store.runInsert([second], now: t0)
        // One key freed on the request path: only that tenant's, only once expired.
        try expect(
            try await store.idempotencyRelease(tenantID: defaultTenantID, key: "k1", before: t0.addingTimeInterval(2)) == false,
            "still current"
        )
        try expect(try await store.idempotencyRelease(tenantID: defaultTenantID, key: "nope", before: t0.addingTimeInterval(9)) == false, "not held")
        try expect(try await store.idempotencyRelease(tenantID: defaultTenantID, key: "k1", before: t0.addingTimeInterval(3)), "expired: freed")
        try expect(try await store.runFindByIdempotencyKey(tenantID: defaultTenantID, key: "k1") == nil, "this tenant's key is free")
        try expect(try await store.runFindByIdempotencyKey(tenantID: "other", key: "k1") != nil, "the other tenant's key is untouched")
    }

    static func deadLetters(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        let runs = (0..<3).map { plainRun(d, at: t0.addingTimeInterval(Double($0)), status: .failed, deadLetter: true) }
        let other = plainRun(d, at: t0, tenant: "other", status: .failed, deadLetter: true)
        let alive = plainRun(d, at: t0.addingTimeInterval(5), status: .failed)
        _ = try await store.runInsert(runs + [other, alive], now: t0)
        let page = try await store.deadLetterList(tenantID: defaultTenantID, before: nil, limit: 2)
        try expect(page.map(\.id) == [runs[2].run.id, runs[1].run.id], "newest first, this tenant only")
        let next = try await store.deadLetterList(tenantID: defaultTenantID, before: page.last?.id, limit: 2)
        try expect(next.map(\.id) == [runs[0].run.id], "the cursor continues")
        try expect(try await store.deadLetterDismiss(tenantID: "other", runID: runs[0].run.id) == false, "tenants are isolated")
        try expect(try await store.deadLetterDismiss(tenantID: defaultTenantID, runID: runs[0].run.id), "dismissed")
        try expect(try await store.deadLetterDismiss(tenantID: defaultTenantID, runID: runs[0].run.id) == false, "once")
        try expect(try await store.deadLetterList(tenantID: defaultTenantID, before: nil, limit: 10).count == 2, "gone from the list")
    }

    static func cluster(_ store: any WorkflowStore) async throws {
        try await store.nodeHeartbeat(NodeHeartbeatParams(id: "n1", host: "h1", startedAt: t0, now: t0))
        try await store.nodeHeartbeat(NodeHeartbeatParams(id: "n2", host: "h2", startedAt: t0, now: t0.addingTimeInterval(5)))
        try await store.nodeHeartbeat(NodeHeartbeatParams(id: "n1", host: "h1", startedAt: t0, now: t0.addingTimeInterval(10)))
        let d = try await insertDefinition(store, definition())
        _ = try await insertRun(store, definition: d, at: t0)
        _ = try await claim(store, owner: "n1", now: t0.addingTimeInterval(10))
        let nodes = try await store.nodeList()
        try expect(nodes.map(\.id) == ["n1", "n2"], "one row per node, latest heartbeat first: \(nodes.map(\.id))")
        try expect(nodes[0].heartbeatAt == t0.addingTimeInterval(10) && nodes[0].heldTasks == 1 && nodes[1].heldTasks == 0, "held tasks")
        try expect(try await store.nodeDeleteStale(before: t0.addingTimeInterval(6)) == 1, "n2 is stale")
        try expect(try await store.nodeList().map(\.id) == ["n1"], "and gone")

        let lease = { (owner: String, at: TimeInterval) in
            LeaderElectParams(name: "sweeper", owner: owner, expiresAt: t0.addingTimeInterval(at + 10), now: t0.addingTimeInterval(at))
        }
        try expect(try await store.leaderAttemptElect(lease("a", 0)), "the first candidate is elected")
        try expect(try await store.leaderAttemptElect(lease("b", 5)) == false, "another cannot take a live lease")
        try expect(try await store.leaderAttemptElect(lease("a", 5)), "the leader renews")
        try expect(try await store.leaderGet(name: "sweeper")?.expiresAt == t0.addingTimeInterval(15), "renewed to 15")
        try expect(try await store.leaderAttemptElect(lease("b", 16)), "an expired lease is taken over")
        try expect(try await store.leaderGet(name: "sweeper")?.owner == "b", "b leads")
        try await store.leaderResign(name: "sweeper", owner: "a")
        try expect(try await store.leaderGet(name: "sweeper")?.owner == "b", "only the owner can resign")
        try await store.leaderResign(name: "sweeper", owner: "b")
        try expect(try await store.leaderGet(name: "sweeper") == nil, "resigned")
    }
}
