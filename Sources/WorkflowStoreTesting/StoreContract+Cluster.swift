import Foundation
import Synchronization
import WorkflowPrimitive
import WorkflowStore

/// The contract for the cluster: nodes, leader lease, notifications.
extension StoreContract {
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

    static func notify(_ store: any WorkflowStore) async throws {
        let heard = Heard()
        let listener = Task { try await store.listenForWork { heard.bump() } }
        defer { listener.cancel() }
        let d = try await insertDefinition(store, definition())
        if store.supportsNotify {
            // The listener attaches in the background: commit work until it is heard (or 10 s pass).
            let deadline = ContinuousClock.now + .seconds(10)
            var at = t0
            while heard.count == 0, ContinuousClock.now < deadline {
                at = at.addingTimeInterval(1)
                _ = try await insertRun(store, definition: d, at: at)
                try await Task.sleep(for: .milliseconds(100))
            }
            try expect(heard.count > 0, "committed work was heard")
        } else {
            _ = try await insertRun(store, definition: d, at: t0)
            try expect(heard.count == 0, "a store that cannot notify never calls onWork")
        }
        listener.cancel()
        // Cancelled, the listener returns (or throws) promptly rather than holding its connection.
        let ended: Bool = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            Task {
                _ = await listener.result
                once.resume(true)
            }
            Task {
                try? await Task.sleep(for: .seconds(10))
                once.resume(false)
            }
        }
        try expect(ended, "the listener did not stop within 10 s of its cancellation")
        try expect(await listener.result.isSuccessOrCancellation, "the listener ended")
    }
}

/// Counts notifications heard by a contract listener.
final class Heard: Sendable {
    private let value = Mutex(0)
    func bump() { value.withLock { $0 += 1 } }
    var count: Int { value.withLock { $0 } }
}

/// Resumes a continuation with the first answer only.
final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>
    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = Mutex(continuation) }
    func resume(_ value: T) {
        continuation.withLock { c in
            c?.resume(returning: value)
            c = nil
        }
    }
}

extension Result {
    fileprivate var isSuccessOrCancellation: Bool {
        switch self {
        case .success: true
        case .failure(let error): error is CancellationError || (error as? WorkflowError)?.code == .unavailable
        }
    }
}
