import Foundation
import Synchronization
import WorkflowStore

/// Claims ready tasks for this node while it has room, and listens for other nodes' work where the store can notify.
///
/// It sleeps until the next task falls due (at most `pollInterval`), or until woken: by a transition that queued work,
/// by freed capacity, or by a notification from another node.
struct Claimer: Sendable {
    let node: EngineNode

    func run() async {
        let configuration = node.configuration
        while !node.isStopping {
            var sleep = configuration.pollInterval
            let capacity = node.capacity
            let room = node.books.withLock { $0.claimRoom(capacity: capacity) }
            if room > 0 {
                let limit = min(room, configuration.claimBatchSize)
                do {
                    let now = node.clock.now()
                    let owner = configuration.nodeID
                    // What the claims did (runs started, tasks taken over), counted once the transaction commits.
                    let claims = Collected<(RunMutation, RunRecord)>()
                    let observing = node.metrics != nil
                    let result = try await node.store.taskClaim(
                        TaskClaimParams(
                            owner: owner,
                            limit: limit,
                            leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
                            now: now,
                            onClaim: { snapshot, task in
                                let mutation = RunStateMachine.claim(snapshot: snapshot, task: task, owner: owner, now: now)
                                if observing { claims.append((mutation, snapshot.run)) }
                                return mutation
                            }
                        )
                    )
                    for (mutation, run) in claims.items { node.observe(mutation, run: run) }
                    node.enqueue(
                        result.claimed.compactMap { c in c.task.kind == .step ? c.step.map { Work(task: c.task, run: c.run, step: $0) } : nil }
                    )
                    node.enqueueControl(result.claimed.filter { $0.task.kind != .step })
                    node.storeAnswered()
                    if result.claimed.count == limit {
                        sleep = .zero  // there may be more
                    } else if let next = result.nextAvailableAt {
                        let wait = min(max(0, next.timeIntervalSince(node.clock.now())), configuration.pollInterval.seconds)
                        sleep = min(sleep, .milliseconds(Int64((wait * 1000).rounded(.up))))
                    }
                } catch is CancellationError {
                    break  // shutdown stopped a claim that waited on the database
                } catch {
                    node.storeFailed("claiming tasks", operation: "claiming", error)
                }
            }
            if sleep > .zero { await node.wake.wait(timeout: sleep) }
        }
    }

    /// Wakes the claimer when another node commits work; reconnects after failures until shutdown.
    func listen() async {
        while !node.isStopping {
            do {
                try await node.store.listenForWork { [wake = node.wake] in wake.signal() }
            } catch {
                if node.isStopping { return }
                node.logger.warning("listening for work failed; polling until it reconnects", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Values gathered from a `@Sendable` closure (which cannot capture a `Mutex` directly).
final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var items: [Value] { values.withLock { $0 } }
}
