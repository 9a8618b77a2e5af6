import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for runs: insert, read, transitions, trees, children, idempotency keys, dead letters, released items.
extension StoreContract {
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

    static func releaseParked(_ store: any WorkflowStore) async throws {
        try await store.ping()
        let d = try await insertDefinition(store, definition())
        var parent = plainRun(d, at: t0)
        parent.run.status = .running
        let parked = (0..<2).map { i in
            var item = plainRun(d, at: t0, parent: parent.run.id, step: "each", item: i)
            item.run.id = RecordID.item(base: parent.run.id, index: i)
            item.initial.newTasks = [NewTask(stepID: nil, kind: .startRun, availableAt: .distantFuture, priority: 0)]
            return item
        }
        parent.initial.spawn = parked
        _ = try await store.runInsert([parent], now: t0)
        let none = try await claim(store, owner: "n1", now: t0.addingTimeInterval(1))
        try expect(none.claimed.isEmpty, "parked runs are not claimable: \(none.claimed.map(\.task.kind))")
        let release = RunTransitionRequest(runID: parent.run.id) { _ in RunMutation(releaseRuns: [parked[1].run.id]) }
        _ = try await store.runTransitions([release], now: t0.addingTimeInterval(2))
        let claimed = try await claim(store, owner: "n1", now: t0.addingTimeInterval(3))
        try expect(claimed.claimed.map(\.run.id) == [parked[1].run.id], "only the released item: \(claimed.claimed.map(\.run.id))")
        try expect(claimed.claimed.first?.task.kind == .startRun, "its start task")
        try expect(store.concurrentWriters >= 1, "at least one writer")
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
}
