import Foundation

/// What one node knows about the work it holds: a pure state machine (events in, actions out; no I/O, no clock).
///
/// The engine's services share one instance under a lock. `Execution` is whatever stops a running step attempt (the
/// engine uses its `Task`; tests use plain values).
///
/// Invariants (checked by `violations`, and in the tests after every event):
/// - every running execution is held: `running.keys ⊆ held`;
/// - only running executions can be abandoned or timed out: `abandoned ⊆ running.keys`, `timedOut.keys ⊆ running.keys`;
/// - once drained, nothing runs.
struct NodeBookkeeping<Execution: Sendable>: Sendable {
    /// A step attempt executing on this node.
    struct Running: Sendable {
        var runID: String
        var execution: Execution
        var deadline: ContinuousClock.Instant?
        var timeout: Duration?
    }

    /// How an execution's end is to be treated.
    enum Ending: Equatable, Sendable {
        /// Its result is recorded.
        case finished
        /// The timeout watcher stopped it: it ends as a retriable `timeout` failure.
        case timedOut(Duration)
        /// This node stopped it on purpose (lease lost, run cancelled): its result is dropped, never recorded, and its
        /// capacity is free again.
        case abandoned
    }

    /// What a lease renewal asks the node to do.
    struct RenewalActions: Sendable {
        /// Executions whose lease another node took over: stop them.
        var stop: [Execution]
        /// Tasks the database says this node holds but it has not known of for two renewals: hand them back.
        var release: [Int64]
    }

    /// Tasks this node holds a lease on: queued here, executing, or awaiting their commit.
    private(set) var held: Set<Int64> = []
    /// Executions in progress, so cancellation, lost leases and timeouts can stop them.
    private(set) var running: [Int64: Running] = [:]
    /// Executions the timeout watcher stopped.
    private(set) var timedOut: [Int64: Duration] = [:]
    /// Executions this node stopped on purpose.
    private(set) var abandoned: Set<Int64> = []
    /// Held in the database but unknown here at the previous renewal (released if still so at the next).
    private(set) var suspectedStale: Set<Int64> = []
    /// The node has begun to shut down.
    private(set) var stopping = false
    /// Every worker has stopped.
    private(set) var drained = false
    /// Claimed but never started when shutdown began; released once the workers stop.
    private(set) var unstarted: [Int64] = []
    /// True while the node runs and takes new starts into its group commit.
    private(set) var acceptingStarts = false
    /// The claimer stopped because this node's capacity was full; whoever frees capacity must wake it.
    private(set) var claimerWaitsForCapacity = false
    /// Since when this node's loops fail to reach the store (nil while it answers).
    private(set) var storeFailingSince: Date?

    /// How many tasks a node may hold (queued, executing and awaiting commit) for `maxConcurrentSteps` workers.
    static func capacity(maxConcurrentSteps: Int) -> Int { maxConcurrentSteps * 2 }

    // MARK: lifecycle

    /// The node's services are running.
    mutating func started() { acceptingStarts = true }

    /// Shutdown began: nothing new is accepted.
    mutating func beginShutdown() {
        stopping = true
        acceptingStarts = false
    }

    /// The work queue closed with `queued` (claimed, never started) in it: forgotten here, handed back once the workers
    /// stop.
    mutating func closedWithUnstarted(_ queued: [Int64]) {
        for id in queued { held.remove(id) }
        unstarted = queued
    }

    /// Every worker has stopped; returns the tasks to hand back.
    mutating func drain() -> [Int64] {
        drained = true
        return unstarted
    }

    // MARK: claiming

    /// Room for new claims out of `capacity`; when there is none, the claimer waits to be woken by `release`.
    mutating func claimRoom(capacity: Int) -> Int {
        let free = capacity - held.count
        claimerWaitsForCapacity = free <= 0
        return max(0, free)
    }

    /// Whether a transition may lease what it readies to this node (it runs and has room), rather than queue it.
    func keepsDispatchedWork(capacity: Int) -> Bool { acceptingStarts && held.count < capacity }

    /// Tasks claimed or leased to this node by a transition.
    mutating func hold(_ ids: some Sequence<Int64>) {
        held.formUnion(ids)
    }

    /// Tasks this node is done with (committed, abandoned, handed back); true when the claimer waits for this room.
    mutating func release(_ ids: some Sequence<Int64>) -> Bool {
        for id in ids { held.remove(id) }
        defer { claimerWaitsForCapacity = false }
        return claimerWaitsForCapacity
    }

    // MARK: executing

    /// An execution of a held task began.
    mutating func began(task: Int64, runID: String, execution: Execution, deadline: ContinuousClock.Instant?, timeout: Duration?) {
        assert(held.contains(task), "an execution began for task \(task), which this node does not hold")
        held.insert(task)
        running[task] = Running(runID: runID, execution: execution, deadline: deadline, timeout: timeout)
    }

    /// An execution ended; says what its result is worth. An abandoned task's capacity is released here.
    mutating func ended(task: Int64) -> Ending {
        running.removeValue(forKey: task)
        let timeout = timedOut.removeValue(forKey: task)
        if abandoned.remove(task) != nil {
            held.remove(task)
            return .abandoned
        }
        return timeout.map(Ending.timedOut) ?? .finished
    }

    /// Executions past their deadline at `now` that are not already stopped: the caller stops them.
    mutating func overdue(now: ContinuousClock.Instant) -> [Execution] {
        var stop: [Execution] = []
        for (id, r) in running {
            guard let deadline = r.deadline, let timeout = r.timeout, deadline <= now, timedOut[id] == nil, !abandoned.contains(id)
            else { continue }
            timedOut[id] = timeout
            stop.append(r.execution)
        }
        return stop
    }

    /// A run was cancelled or timed out: its executions (except `keeping`) are stopped and their results dropped.
    mutating func runStopped(_ runID: String, keeping: Set<Int64> = []) -> [Execution] {
        var stop: [Execution] = []
        for (id, r) in running where r.runID == runID && !keeping.contains(id) {
            abandoned.insert(id)
            stop.append(r.execution)
        }
        return stop
    }

    // MARK: leases

    /// A lease renewal answered: `stillHeld` are the tasks the database says this node holds, judged against `heldBefore`
    /// (what this node held when the renewal began; work claimed meanwhile is not in its answer).
    mutating func leasesRenewed(heldBefore: Set<Int64>, stillHeld: Set<Int64>) -> RenewalActions {
        // Held here but no longer ours in the database: our lease expired and another node took the task over.
        let lost = heldBefore.subtracting(stillHeld).intersection(held)
        var stop: [Execution] = []
        for id in lost {
            guard let r = running[id] else { continue }
            abandoned.insert(id)
            stop.append(r.execution)
        }
        let stale = stillHeld.subtracting(held)
        let release = Array(stale.intersection(suspectedStale))
        suspectedStale = stale
        return RenewalActions(stop: stop, release: release)
    }

    // MARK: store health

    /// A loop failed to reach the store at `now`; true for the first failure of an outage.
    mutating func storeFailed(at now: Date) -> Bool {
        defer { storeFailingSince = storeFailingSince ?? now }
        return storeFailingSince == nil
    }

    /// A loop reached the store; returns since when it had been failing, if it had.
    mutating func storeAnswered() -> Date? {
        defer { storeFailingSince = nil }
        return storeFailingSince
    }

    /// Why the node should not get traffic, or nil when it is ready.
    var notReadyReason: String? {
        if stopping { return "the node is shutting down" }
        if let since = storeFailingSince { return "the database has been failing since \(since.formatted(.iso8601))" }
        return nil
    }

    /// Broken invariants, described (empty when the state is consistent).
    var violations: [String] {
        var found: [String] = []
        let notHeld = Set(running.keys).subtracting(held)
        if !notHeld.isEmpty { found.append("running but not held: \(notHeld.sorted())") }
        let strayAbandoned = abandoned.subtracting(running.keys)
        if !strayAbandoned.isEmpty { found.append("abandoned but not running: \(strayAbandoned.sorted())") }
        let strayTimedOut = Set(timedOut.keys).subtracting(running.keys)
        if !strayTimedOut.isEmpty { found.append("timed out but not running: \(strayTimedOut.sorted())") }
        if drained && !running.isEmpty { found.append("drained with \(running.count) executions running") }
        return found
    }
}
