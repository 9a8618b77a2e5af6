import Foundation
import Logging
import Synchronization
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// A claimed step attempt waiting for, or in, execution.
struct Work: Sendable {
    var task: TaskRecord
    var run: RunRecord
    var step: StepRunRecord
}

/// A step attempt's outcome, waiting for the committer.
struct Completion: Sendable {
    var work: Work
    var result: StepResult
}

/// A run waiting for the next group commit of starts.
struct PendingStart: Sendable {
    var params: RunInsertParams
    var continuation: CheckedContinuation<[TaskRecord], any Error>
}

/// What the services of one node share: its configuration and store, its bookkeeping of held work (`NodeBookkeeping`,
/// under one lock), and the queues that connect the services:
///
///     claimer ─▶ ready ─▶ step runner ─▶ completions ─▶ committer ─▶ (dispatch) ─▶ ready / controls / wake
///     commands ─▶ starts ─▶ committer                    claimer ─▶ controls ─▶ control tasks ─▶ (dispatch)
final class EngineNode: Sendable {
    typealias Books = NodeBookkeeping<Task<StepResult, Never>>

    let configuration: EngineConfiguration
    let store: any WorkflowStore
    let registry: WorkflowRegistry
    let clock: any WorkflowClock
    let logger: Logger
    let startedAt: Date
    /// What this node measures (nil: nothing is measured).
    let metrics: WorkflowMetrics?

    /// Claimed step attempts, waiting for a worker.
    let ready = WorkQueue<Work>()
    /// Outcomes waiting to be recorded.
    let completions = WorkQueue<Completion>()
    /// Starts waiting for the group commit.
    let starts = WorkQueue<PendingStart>()
    /// Claimed control tasks (tell a parent, cancel children, start an item, time a run out).
    let controls = WorkQueue<ClaimedTask>()
    /// Wakes the claimer (work was queued, or capacity freed).
    let wake = WakeSignal()
    /// Wakes the lease keeper for its last round.
    let heartbeatStop = WakeSignal()
    let books = Mutex(Books())
    /// Tenants' settings as last read, with when.
    let tenantSettingsCache = Mutex<[String: (settings: TenantSettings, at: ContinuousClock.Instant)]>([:])

    init(
        configuration: EngineConfiguration,
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        clock: any WorkflowClock,
        metrics: WorkflowMetrics? = nil,
        logger: Logger
    ) {
        self.configuration = configuration
        self.metrics = metrics
        self.store = store
        self.registry = registry
        self.clock = clock
        var logger = logger
        logger[metadataKey: LogKey.node] = .string(configuration.nodeID)
        self.logger = logger
        self.startedAt = clock.now()
        // A test clock's jump may have made tasks due: the claimer looks again instead of sleeping out its wait.
        clock.onAdvance { [wake] in wake.signal() }
    }

    var capacity: Int { Books.capacity(maxConcurrentSteps: configuration.maxConcurrentSteps) }

    var isStopping: Bool { Task.isCancelled || books.withLock { $0.stopping } }

    var storeIsFailing: Bool { books.withLock { $0.storeFailingSince != nil } }

    // MARK: store health

    /// Records that a loop reached the store; logs the recovery once.
    func storeAnswered() {
        if let since = books.withLock({ $0.storeAnswered() }) {
            logger.notice("the database answers again", metadata: ["down_seconds": "\(Int(clock.now().timeIntervalSince(since)))"])
        }
    }

    /// Records that a loop could not reach the store; logs the first failure of an outage as an error, the rest at debug
    /// level, so that a database down for minutes does not flood the log.
    /// `operation` is the metric's label: one of a fixed few (claiming, committing, starting, heartbeat, reading).
    func storeFailed(_ what: String, operation: String, _ error: any Error) {
        metrics?.databaseErrors(operation)
        let now = clock.now()
        let first = books.withLock { $0.storeFailed(at: now) }
        logger.log(level: first ? .error : .debug, "\(what) failed", metadata: ["error": "\(error)"])
    }

    /// Counts what committed transitions did: runs started and finished, and tasks taken over from a dead node.
    func observe(_ mutation: RunMutation, run fallback: RunRecord) {
        if fallback.traceParent != nil || mutation.run?.traceParent != nil {
            let run = mutation.run ?? fallback
            for event in mutation.events where ["run_completed", "run_failed", "run_cancelled", "run_timed_out"].contains(event.type) {
                RunTracing.finished(run, status: String(event.type.dropFirst(4)))
            }
        }
        guard let metrics else { return }
        let run = mutation.run ?? fallback
        for event in mutation.events {
            switch event.type {
            case "run_started":
                metrics.runStarted(workflow: run.workflowName)
            case "run_completed", "run_failed", "run_cancelled", "run_timed_out":
                let began = run.startedAt ?? run.createdAt
                let ended = run.completedAt ?? clock.now()
                metrics.runFinished(
                    workflow: run.workflowName,
                    status: String(event.type.dropFirst(4)),
                    duration: .milliseconds(Int64(max(0, ended.timeIntervalSince(began)) * 1000))
                )
            case "step_started" where event.data["taken_over_from"] != nil:
                metrics.leaseTakeovers(1)
            default: break
            }
        }
    }

    // MARK: plans

    /// The plan a run executes: its definition's, or the nested steps of a `foreach` for an item.
    func plan(for run: RunRecord) async throws -> WorkflowPlan? {
        try await registry.definition(id: run.definitionID, tenantID: run.tenantID)?.plan.body(at: run.bodyPath)
    }

    /// How many runs the tree of `run` holds, when its plan can start runs (nil otherwise, or when the
    /// count fails): the transition then holds nested fan-out to the tree's bound (`RunSnapshot.treeRuns`).
    func treeRuns(of run: RunRecord, plan: WorkflowPlan?) async -> Int? {
        guard let plan, plan.steps.contains(where: { $0.type == .foreach || $0.type == .subWorkflow }) else { return nil }
        return try? await store.runTreeCount(rootRunID: run.treeRootID)
    }

    // MARK: dispatch

    /// Where this node sends the steps it unblocks: to itself while it has room and runs, else to the shared queue.
    func dispatchTarget(now: Date) -> RunStateMachine.Dispatch? {
        let capacity = capacity
        guard books.withLock({ $0.keepsDispatchedWork(capacity: capacity) }) else { return nil }
        // One transition takes at most a worker pool's worth: the usual few steps stay on this node (no claim round
        // trip), and a run that readies thousands at once queues the rest behind the fair queue's head.
        return RunStateMachine.Dispatch(
            owner: configuration.nodeID,
            leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
            capacity: configuration.maxConcurrentSteps
        )
    }

    /// Runs the steps a transition leased to this node, and wakes the claimer for those it queued for any node.
    func dispatch(_ tasks: [TaskRecord], of run: RunRecord, steps: [StepRunRecord], mutation: RunMutation? = nil) {
        if let mutation { observe(mutation, run: run) }
        var mine: [Work] = []
        var control: [ClaimedTask] = []
        var queued = !(mutation?.releaseRuns.isEmpty ?? true)
        for task in tasks {
            if task.leaseOwner == configuration.nodeID, task.kind == .step, let stepID = task.stepID,
                let step = steps.last(where: { $0.stepID == stepID })
            {
                mine.append(Work(task: task, run: run, step: step))
            } else if task.leaseOwner == configuration.nodeID, task.kind.isControl, task.runID == run.id {
                control.append(ClaimedTask(task: task, run: run, step: nil))
            } else {
                queued = true
            }
        }
        enqueue(mine)
        enqueueControl(control)
        if queued { wake.signal() }
    }

    /// Queues claimed step attempts for the workers.
    func enqueue(_ work: [Work]) {
        guard !work.isEmpty else { return }
        books.withLock { $0.hold(work.map(\.task.id)) }
        ready.push(work)
    }

    /// Queues claimed control tasks for the control-task processor.
    func enqueueControl(_ control: [ClaimedTask]) {
        guard !control.isEmpty else { return }
        books.withLock { $0.hold(control.map(\.task.id)) }
        if !controls.push(control) { releaseCapacity(control.map(\.task.id)) }
    }

    /// Forgets finished tasks and wakes the claimer if it was waiting for room.
    func releaseCapacity(_ ids: [Int64]) {
        if books.withLock({ $0.release(ids) }) { wake.signal() }
    }

    /// Stops the executions of a run (cancelled or timed out), except `keeping`; their results are dropped.
    func stopExecutions(of runID: String, keeping: Set<Int64> = []) {
        for task in books.withLock({ $0.runStopped(runID, keeping: keeping) }) { task.cancel() }
    }

    /// Applies transitions that no worker's completion carries (signals, retries, control tasks) and runs what they
    /// unblocked; `runs[i]` is request `i`'s run as last read.
    @discardableResult
    func applyAndDispatch(_ requests: [RunTransitionRequest], runs: [RunRecord], now: Date) async throws -> [RunTransitionOutcome] {
        let outcomes = try await store.runTransitions(requests, now: now)
        for (run, outcome) in zip(runs, outcomes) {
            if case .applied(let mutation, let tasks) = outcome {
                dispatch(tasks, of: mutation.run ?? run, steps: mutation.steps, mutation: mutation)
            }
        }
        return outcomes
    }

    /// Hands tasks back to the queue (best effort: an unreachable store lets the leases lapse instead).
    func handBack(_ ids: [Int64]) async {
        guard !ids.isEmpty else { return }
        try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: ids)
    }

    func nodeHeartbeat() -> NodeHeartbeatParams {
        NodeHeartbeatParams(id: configuration.nodeID, host: ProcessInfo.processInfo.hostName, startedAt: startedAt, now: clock.now())
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

extension EngineNode {
    /// A tenant's settings, read at most every `tenantSettingsTTL` (a change reaches every node within that time).
    func tenantSettings(_ tenantID: String) async -> TenantSettings {
        let now = ContinuousClock.now
        if let hit = tenantSettingsCache.withLock({ $0[tenantID] }), now - hit.at < configuration.tenantSettingsTTL { return hit.settings }
        guard let tenant = try? await store.tenantGet(id: tenantID) else {
            // The database did not answer: the last known settings rather than the defaults (which may be laxer).
            return tenantSettingsCache.withLock { $0[tenantID]?.settings } ?? TenantSettings()
        }
        tenantSettingsCache.withLock { $0[tenantID] = (tenant.settings, now) }
        return tenant.settings
    }

    /// Opens the tenant's secrets `names`.
    /// - Throws: a `StepFailure` naming what is missing (never a value).
    func secretValues(tenantID: String, names: Set<String>) async throws(SecretFailure) -> [String: String] {
        guard let keys = configuration.masterKeys else {
            throw SecretFailure(code: "secret_unavailable", message: "this node has no master key, so it cannot open secrets", retriable: false)
        }
        var values: [String: String] = [:]
        for name in names.sorted() {
            let record: SecretRecord?
            do {
                record = try await store.secretGet(tenantID: tenantID, name: name)
            } catch {
                throw SecretFailure(
                    code: "secret_unavailable",
                    message: "the secret \(name) could not be read: the database did not answer",
                    retriable: true
                )
            }
            guard let record else {
                throw SecretFailure(code: "secret_not_found", message: "the tenant has no secret \(name)", retriable: false)
            }
            do {
                let data = try keys.open(record.ciphertext, keyID: record.keyID, context: MasterKeyring.secretContext(tenantID: tenantID, name: name))
                values[name] = String(decoding: data, as: UTF8.self)
            } catch {
                throw SecretFailure(code: "secret_unavailable", message: "the secret \(name) cannot be opened: \(error.message)", retriable: false)
            }
        }
        return values
    }
}

/// Why a step's secrets could not be given to it.
struct SecretFailure: Error {
    var code: String
    var message: String
    var retriable: Bool
}
