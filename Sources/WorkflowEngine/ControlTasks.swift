import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Carries out claimed control tasks: cancelling a run's children, telling a parent that a child finished, starting
/// released `foreach` items, and timing out runs. Each is fenced by its task, so it takes effect once even when two
/// nodes hold the task in turn; on failure the task is handed back and runs again.
struct ControlTasks: Sendable {
    let node: EngineNode

    func run() async {
        while let batch = await node.controls.next(max: 64) {
            for claimed in batch where claimed.task.kind == .cancelChildren {
                await cancelChildren(claimed)
            }
            let notifications = batch.filter { $0.task.kind == .notifyParent }
            if !notifications.isEmpty { await notifyParents(notifications) }
            let starts = batch.filter { $0.task.kind == .startRun }
            if !starts.isEmpty { await beginRuns(starts) }
            let timeouts = batch.filter { $0.task.kind == .runTimeout }
            if !timeouts.isEmpty { await timeOut(timeouts) }
            node.releaseCapacity(batch.map(\.task.id))
        }
    }

    /// Hands finished children to their parents: each parent's update is fenced by the child's task.
    private func notifyParents(_ batch: [ClaimedTask]) async {
        let now = node.clock.now()
        let target = node.dispatchTarget(now: now)
        var requests: [RunTransitionRequest] = []
        var targets: [RunRecord] = []
        var parents: [String: (RunRecord, WorkflowPlan)?] = [:]  // the items of a foreach share their parent
        var counts: [String: Int?] = [:]  // tree sizes by root (nil inside: not counted)
        var unreadable: [Int64] = []
        for claimed in batch {
            let child = claimed.run
            if let parentID = child.parentRunID, parents[parentID] == nil {
                do {
                    let parent = try await node.store.runGet(tenantID: child.tenantID, id: parentID)
                    let parentPlan = try await parent.asyncFlatMap { try await node.plan(for: $0) }
                    parents[parentID] = parent.flatMap { p in parentPlan.map { (p, $0) } }
                } catch {
                    unreadable.append(claimed.task.id)  // a failed read is not a missing parent: try again later
                    continue
                }
            }
            guard let (parent, plan) = child.parentRunID.flatMap({ parents[$0] ?? nil }) else {
                // No parent to tell (or its definition is gone): only remove the task.
                requests.append(RunTransitionRequest(runID: child.id, fence: claimed.task.fence) { _ in RunMutation() })
                targets.append(child)
                continue
            }
            targets.append(parent)
            if counts[parent.treeRootID] == nil { counts[parent.treeRootID] = .some(await node.treeRuns(of: parent, plan: plan)) }
            let counted = counts[parent.treeRootID] ?? nil
            let random = Double.random(in: 0..<1)
            requests.append(
                RunTransitionRequest(runID: parent.id, fence: claimed.task.fence, fenceRunID: child.id) { snapshot in
                    var snapshot = snapshot
                    snapshot.treeRuns = counted
                    return RunStateMachine.childFinished(snapshot: snapshot, plan: plan, child: child, now: now, dispatch: target, random: random)
                }
            )
        }
        if !unreadable.isEmpty {
            node.logger.warning("could not read parent runs; will retry", metadata: ["count": "\(unreadable.count)"])
            await node.handBack(unreadable)
        }
        do {
            try await node.applyAndDispatch(requests, runs: targets, now: now)
        } catch {
            node.logger.error("telling parent runs of finished children failed; will retry", metadata: ["error": "\(error)"])
            await node.handBack(batch.map(\.task.id))
        }
    }

    /// Starts released `foreach` items, each fenced by its start task.
    private func beginRuns(_ batch: [ClaimedTask]) async {
        await applyOwnRunTransitions(batch, failure: "starting released items") { snapshot, plan, _, now, target in
            RunStateMachine.begin(snapshot: snapshot, plan: plan, now: now, dispatch: target)
        }
    }

    /// Fails runs whose `timeout_ms` ran out (with their compensations), each fenced by its timeout task.
    private func timeOut(_ batch: [ClaimedTask]) async {
        let outcomes = await applyOwnRunTransitions(batch, failure: "timing out runs") { snapshot, plan, task, now, target in
            RunStateMachine.timeout(snapshot: snapshot, plan: plan, deadline: task.availableAt, now: now, dispatch: target)
        }
        for (claimed, outcome) in zip(batch, outcomes) {
            // Stop the steps the timeout cancelled, not the compensations it just started.
            if case .applied(_, let tasks) = outcome { node.stopExecutions(of: claimed.run.id, keeping: Set(tasks.map(\.id))) }
        }
    }

    /// Applies a plan-aware transition to each claimed control task's own run, fenced by the task.
    @discardableResult
    private func applyOwnRunTransitions(
        _ batch: [ClaimedTask],
        failure: String,
        decide: @escaping @Sendable (RunSnapshot, WorkflowPlan, TaskRecord, Date, RunStateMachine.Dispatch?) -> RunMutation
    ) async -> [RunTransitionOutcome] {
        let now = node.clock.now()
        let target = node.dispatchTarget(now: now)
        var requests: [RunTransitionRequest] = []
        for claimed in batch {
            let plan = try? await node.plan(for: claimed.run)
            let counted = await node.treeRuns(of: claimed.run, plan: plan)
            let task = claimed.task
            requests.append(
                RunTransitionRequest(runID: claimed.run.id, fence: task.fence) { snapshot in
                    guard let plan else { throw WorkflowError(.internalError, "the run's definition cannot be loaded") }
                    var snapshot = snapshot
                    snapshot.treeRuns = counted
                    return decide(snapshot, plan, task, now, target)
                }
            )
        }
        do {
            return try await node.applyAndDispatch(requests, runs: batch.map(\.run), now: now)
        } catch {
            node.logger.error("\(failure) failed; will retry", metadata: ["error": "\(error)"])
            await node.handBack(batch.map(\.task.id))
            return []
        }
    }

    /// Cancels the unfinished children of a run (or of one of its steps), then removes the task.
    private func cancelChildren(_ claimed: ClaimedTask) async {
        let parentID = claimed.run.id
        let store = node.store
        do {
            // A stopped top-level run stops its whole tree at once (one indexed query), not one level per task round:
            // a tree that multiplies would otherwise outgrow a cancellation that walks it level by level.
            let stopsTree = claimed.run.parentRunID == nil && claimed.run.status.isTerminal
            let children =
                stopsTree
                ? try await store.runTreeUnfinished(rootRunID: parentID, limit: 100_000)
                : try await store.runChildren(parentRunID: parentID, stepID: claimed.task.stepID, unfinishedOnly: true)
            var start = 0
            while start < children.count {
                let chunk = Array(children[start..<min(children.count, start + node.configuration.commitBatchSize)])
                start += chunk.count
                let now = node.clock.now()
                let requests = chunk.map { child in
                    RunTransitionRequest(runID: child.id) { snapshot in
                        try RunStateMachine.cancel(
                            snapshot: snapshot,
                            reason: "its parent run \(parentID) stopped waiting for it",
                            now: now,
                            notifyParent: false
                        )
                    }
                }
                let outcomes = try await node.applyAndDispatch(requests, runs: chunk, now: now)
                for (child, outcome) in zip(chunk, outcomes) {
                    if case .applied = outcome { node.stopExecutions(of: child.id) }
                }
            }
            _ = try await store.runTransitions(
                [RunTransitionRequest(runID: parentID, fence: claimed.task.fence) { _ in RunMutation() }],
                now: node.clock.now()
            )
            if !children.isEmpty {
                node.logger.info("cancelled child runs", metadata: [LogKey.run: .string(parentID), "count": "\(children.count)"])
            }
        } catch {
            node.logger.error("cancelling child runs failed; will retry", metadata: [LogKey.run: .string(parentID), "error": "\(error)"])
            await node.handBack([claimed.task.id])
        }
    }
}

extension Optional {
    fileprivate func asyncFlatMap<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
