import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for the queue: claims, leases, fencing, fairness.
extension StoreContract {
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
        // The backlog the metrics report: due and unleased, counted up to a limit, and the oldest one's due time.
        let backlog = try await store.queueStats(now: now, limit: 100)
        try expect(backlog.ready == 3, "three tasks are due, the timer is not: \(backlog)")
        try expect(backlog.oldestAvailableAt.map { abs($0.timeIntervalSince(t0)) < 0.002 } ?? false, "the oldest fell due at t0: \(backlog)")
        try expect(try await store.queueStats(now: now, limit: 2).ready == 2, "the count stops at its limit")
        try expect(
            try await store.queueStats(now: t0.addingTimeInterval(-5), limit: 100) == QueueStats(ready: 0, oldestAvailableAt: nil),
            "nothing due yet"
        )
        let first = try await claim(store, owner: "n1", now: now, limit: 2)
        try expect(try await store.queueStats(now: now, limit: 100).ready == 1, "claimed tasks are not waiting")
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
        let lapsed = try await store.queueStats(now: expired, limit: 100)
        try expect(lapsed.ready == 3, "tasks whose leases ran out wait again (n1's two, n2's one): \(lapsed)")
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
}
