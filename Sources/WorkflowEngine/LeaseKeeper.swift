import Foundation
import WorkflowStore

/// Keeps this node's leases: renews them every heartbeat, stops executions whose lease another node took over, and
/// hands back tasks the database says this node holds but it has forgotten (after two heartbeats, to let in-flight
/// claims land).
struct LeaseKeeper: Sendable {
    let node: EngineNode

    /// Renews until the workers have drained.
    func run() async {
        while true {
            await node.heartbeatStop.wait(timeout: node.configuration.heartbeatInterval)
            if Task.isCancelled || node.books.withLock({ $0.drained }) { return }
            await heartbeat()
        }
    }

    func heartbeat() async {
        let now = node.clock.now()
        let configuration = node.configuration
        do {
            try await node.store.nodeHeartbeat(node.nodeHeartbeat())
            // Only tasks held before the renewal began can be judged by it: work claimed meanwhile is not in its answer.
            let heldBefore = node.books.withLock { $0.held }
            let held = try await node.store.leaseRenew(
                LeaseRenewParams(
                    owner: configuration.nodeID,
                    leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
                    now: now
                )
            )
            let actions = node.books.withLock { $0.leasesRenewed(heldBefore: heldBefore, stillHeld: held) }
            if !actions.stop.isEmpty {
                node.logger.warning("lost the lease of running steps; stopping them", metadata: ["count": "\(actions.stop.count)"])
            }
            for task in actions.stop { task.cancel() }
            if !actions.release.isEmpty {
                try await node.store.leaseRelease(owner: configuration.nodeID, taskIDs: actions.release)
                node.wake.signal()
            }
            node.storeAnswered()
        } catch {
            node.storeFailed("renewing leases", operation: "heartbeat", error)
        }
    }
}
