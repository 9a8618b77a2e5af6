import Foundation
import WorkflowPrimitive
import WorkflowStore

/// Records what the node did: step outcomes, many per transaction (fenced by their tasks), and new runs, group-committed
/// so that concurrent starts share one flush to disk. Then runs what each commit unblocked.
struct Committer: Sendable {
    let node: EngineNode

    /// Records step outcomes in batches until the workers have stopped and the queue is empty.
    func recordResults() async {
        while let batch = await node.completions.next(max: node.configuration.commitBatchSize) {
            await commit(batch)
        }
    }

    /// Commits queued starts in batches until shutdown, then what is left.
    func insertStarts() async {
        let store = node.store
        while let batch = await node.starts.next(max: node.configuration.commitBatchSize) {
            do {
                let tasks = try await store.runInsert(batch.map(\.params), now: node.clock.now())
                for (pending, inserted) in zip(batch, tasks) { pending.continuation.resume(returning: inserted) }
            } catch let error as WorkflowError where error.code == .unavailable {
                // The database is away: every start of the batch would wait for it in turn.
                node.storeFailed("starting runs", operation: "starting", error)
                for pending in batch { pending.continuation.resume(throwing: error) }
            } catch {
                // One bad run must not fail its neighbours: retry them one by one to isolate it.
                for pending in batch {
                    do {
                        pending.continuation.resume(returning: try await store.runInsert([pending.params], now: node.clock.now()).first ?? [])
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// The transitions that record a batch of outcomes: plans are loaded once per definition, tree sizes counted once
    /// per tree (only for plans that can start runs).
    private func requests(for batch: [Completion], now: Date) async -> [RunTransitionRequest] {
        var plans: [String: WorkflowPlan] = [:]
        func key(_ run: RunRecord) -> String { run.definitionID + "/" + (run.bodyPath ?? "") }
        for completion in batch where plans[key(completion.work.run)] == nil {
            plans[key(completion.work.run)] = try? await node.plan(for: completion.work.run)
        }
        var counts: [String: Int?] = [:]
        for completion in batch where counts[completion.work.run.treeRootID] == nil {
            counts[completion.work.run.treeRootID] = .some(await node.treeRuns(of: completion.work.run, plan: plans[key(completion.work.run)]))
        }
        let target = node.dispatchTarget(now: now)
        return batch.map { completion in
            let plan = plans[key(completion.work.run)]
            let stepID = completion.work.step.stepID
            let result = completion.result
            let random = Double.random(in: 0..<1)
            let counted = counts[completion.work.run.treeRootID] ?? nil
            return RunTransitionRequest(runID: completion.work.run.id, fence: completion.work.task.fence) { snapshot in
                guard let plan else { throw WorkflowError(.internalError, "the run's definition cannot be loaded") }
                var snapshot = snapshot
                snapshot.treeRuns = counted
                return RunStateMachine.complete(
                    snapshot: snapshot,
                    plan: plan,
                    stepID: stepID,
                    result: result,
                    now: now,
                    dispatch: target,
                    random: random
                )
            }
        }
    }

    /// Records a batch of outcomes in one transaction, then runs what they unblocked.
    private func commit(_ batch: [Completion]) async {
        let now = node.clock.now()
        let requests = await requests(for: batch, now: now)
        if node.isStopping && node.storeIsFailing {
            node.logger.warning(
                "shutting down with the database away: step results are dropped and run again",
                metadata: ["count": "\(batch.count)"]
            )
            node.releaseCapacity(batch.map(\.work.task.id))
            return
        }
        let outcomes = await write(requests, now: now)
        let finishedIDs = batch.map(\.work.task.id)
        node.releaseCapacity(finishedIDs)
        guard let outcomes else {
            // The results are lost, but the tasks are still leased to us: hand them back so they run again (or let the
            // leases lapse, if the database is away).
            if !node.storeIsFailing { await node.handBack(finishedIDs) }
            node.wake.signal()
            return
        }
        for (completion, outcome) in zip(batch, outcomes) {
            let work = completion.work
            switch outcome {
            case .applied(let mutation, let tasks):
                node.dispatch(tasks, of: mutation.run ?? work.run, steps: mutation.steps, mutation: mutation)
                if node.logger.logLevel <= .debug {
                    node.logger.debug(
                        "step attempt recorded",
                        metadata: [
                            LogKey.run: .string(work.run.id), LogKey.step: .string(work.step.stepID),
                            "events": .string(mutation.events.map(\.type).joined(separator: ",")),
                        ]
                    )
                }
            case .fenced:
                node.logger.notice(
                    "step result discarded: this node no longer holds the task (run cancelled, or lease taken over)",
                    metadata: [LogKey.run: .string(work.run.id), LogKey.step: .string(work.step.stepID)]
                )
            case .runNotFound:
                node.logger.error("step result for a missing run", metadata: [LogKey.run: .string(work.run.id)])
            case .rejected(let error):
                node.logger.error("step result rejected", metadata: [LogKey.run: .string(work.run.id), "error": "\(error)"])
            }
        }
    }

    /// Writes the transitions. Results are worth keeping (dropping one runs its step again): an unreachable store is
    /// waited for as long as this node's leases can still be current; any other failure is tried a few times. Nil when
    /// they could not be written.
    private func write(_ requests: [RunTransitionRequest], now: Date) async -> [RunTransitionOutcome]? {
        let giveUp = ContinuousClock.now + node.configuration.leaseDuration
        var attempt = 0
        while true {
            attempt += 1
            do {
                let outcomes = try await node.store.runTransitions(requests, now: now)
                node.storeAnswered()
                return outcomes
            } catch is CancellationError {
                return nil  // cancelled past the shutdown grace: the leases lapse and the steps run again
            } catch {
                let unavailable = (error as? WorkflowError)?.code == .unavailable
                if unavailable {
                    node.storeFailed("recording step results", operation: "committing", error)
                } else {
                    node.logger.error("recording step results failed", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                }
                // Shutting down with the database away, waiting helps nobody: the leases lapse and the steps run again.
                guard unavailable ? ContinuousClock.now < giveUp && !node.isStopping : attempt < 5 else { return nil }
                try? await Task.sleep(for: .milliseconds(min(2000, 100 * attempt * attempt)))
            }
        }
    }
}
