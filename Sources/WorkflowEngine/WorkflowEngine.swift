import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// Executes runs durably on one node: claims tasks, runs their steps, records each outcome (many per transaction),
/// and runs what an outcome unblocked right away instead of waiting for a poll.
///
/// Every state change is committed before anything reports it. A step's completion is written only while this
/// node's claim of its task is current (fencing), so a late or duplicate worker cannot record it twice.
public final class WorkflowEngine: Service, Sendable {
    /// A claimed step attempt waiting for, or in, execution.
    struct Work: Sendable {
        var task: TaskRecord
        var run: RunRecord
        var step: StepRunRecord
    }

    struct Completion: Sendable {
        var work: Work
        var result: StepResult
    }

    /// A run waiting for the next group commit of starts.
    struct PendingStart: Sendable {
        var params: RunInsertParams
        var continuation: CheckedContinuation<[TaskRecord], any Error>
    }

    private struct LocalState {
        /// Tasks this node holds a lease on: queued here, executing, or awaiting their commit.
        var held: Set<Int64> = []
        /// Executions in progress, so cancellation, lost leases and timeouts can stop them.
        var running: [Int64: (runID: String, task: Task<StepResult, Never>, deadline: ContinuousClock.Instant?, timeout: Duration?)] = [:]
        /// Executions the timeout watcher stopped: they end as a retriable `timeout` failure.
        var timedOut: [Int64: Duration] = [:]
        /// Held in the database but unknown here at the previous heartbeat (released if still so at the next).
        var suspectedStale: Set<Int64> = []
        /// Executions this node stopped on purpose (lease lost, run cancelled): their results are dropped, never recorded.
        var abandoned: Set<Int64> = []
        var stopping = false
        /// Every worker has stopped.
        var drained = false
        /// Claimed but never started when shutdown began; released once the workers stop.
        var unstarted: [Int64] = []
        /// True while the start committer runs: starts are then group-committed.
        var batchingStarts = false
        /// The claimer stopped because this node's capacity was full; whoever frees capacity must wake it.
        var claimerWaitsForCapacity = false
        /// Since when this node's loops fail to reach the store (nil while it answers): readiness reports it.
        var storeFailingSince: Date?
    }

    public let configuration: EngineConfiguration
    private let store: any WorkflowStore
    private let registry: WorkflowRegistry
    private let executors: StepExecutors
    private let clock: any WorkflowClock
    private let logger: Logger
    private let ready = WorkQueue<Work>()
    private let completions = WorkQueue<Completion>()
    private let wake = WakeSignal()
    private let heartbeatStop = WakeSignal()
    private let starts = WorkQueue<PendingStart>()
    /// Claimed control tasks (tell a parent, cancel children), carried out by the control loop.
    private let controls = WorkQueue<ClaimedTask>()
    private let local = Mutex(LocalState())
    private let startedAt: Date

    public init(
        configuration: EngineConfiguration,
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        executors: StepExecutors,
        clock: any WorkflowClock = SystemClock(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.registry = registry
        self.executors = executors
        self.clock = clock
        var logger = logger
        logger[metadataKey: LogKey.node] = .string(configuration.nodeID)
        self.logger = logger
        self.startedAt = clock.now()
    }

    /// Step attempts executing on this node right now.
    public var activeExecutions: Int { local.withLock { $0.running.count } }

    /// Why this node should not get traffic now (shutting down, or its store failing), or nil when it is ready.
    public var notReadyReason: String? {
        local.withLock { s in
            if s.stopping { return "the node is shutting down" }
            if let since = s.storeFailingSince {
                return "the database has been failing since \(since.formatted(.iso8601))"
            }
            return nil
        }
    }

    /// Records that a loop reached the store; logs the recovery once.
    private func storeAnswered() {
        let since = local.withLock { s in
            defer { s.storeFailingSince = nil }
            return s.storeFailingSince
        }
        if let since {
            logger.notice("the database answers again", metadata: ["down_seconds": "\(Int(clock.now().timeIntervalSince(since)))"])
        }
    }

    /// Records that a loop could not reach the store; logs the first failure of an outage as an error, the rest at debug
    /// level, so that a database down for minutes does not flood the log.
    private func storeFailed(_ what: String, _ error: any Error) {
        let first = local.withLock { s in
            defer { s.storeFailingSince = s.storeFailingSince ?? clock.now() }
            return s.storeFailingSince == nil
        }
        logger.log(level: first ? .error : .debug, "\(what) failed", metadata: ["error": "\(error)"])
    }

    // MARK: commands

    /// Starts a run of `definition`. Returns once the run and its first tasks are committed.
    /// - Throws: `invalid_input` when `input` is not a JSON object.
    public func start(
        definition: CompiledDefinition,
        input: JSONValue,
        tenantID: String = defaultTenantID,
        idempotencyKey: String? = nil,
        requestHash: String? = nil,
        priority: Int = 0,
        parentRunID: String? = nil
    ) async throws -> RunRecord {
        let input = input.isNull ? .object([:]) : input
        guard case .object = input else {
            throw WorkflowError(
                .invalidInput,
                "the run input must be a JSON object",
                issues: [
                    ValidationIssue(pointer: JSONPointer.root.appending("input"), message: "must be an object, got \(input.typeName)")
                ]
            )
        }
        let now = clock.now()
        let record = definition.record
        let run = RunRecord(
            id: RecordID.make(now: now),
            tenantID: tenantID,
            definitionID: record.id,
            workflowName: record.name,
            workflowVersion: record.version,
            status: .pending,
            input: input,
            idempotencyKey: idempotencyKey,
            requestHash: requestHash,
            parentRunID: parentRunID,
            priority: priority,
            createdAt: now,
            updatedAt: now
        )
        var initial = RunStateMachine.start(run: run, plan: definition.plan, now: now, dispatch: dispatchTarget(now: now))
        let inserted = initial.run ?? run
        initial.run = nil
        let params = RunInsertParams(run: inserted, initial: initial)
        let tasks: [TaskRecord]
        if local.withLock({ $0.batchingStarts }) {
            // Group commit: concurrent starts share one transaction, and so one flush to disk.
            tasks = try await withCheckedThrowingContinuation { continuation in
                if !starts.push(PendingStart(params: params, continuation: continuation)) {
                    continuation.resume(throwing: WorkflowError(.unavailable, "the engine is shutting down"))
                }
            }
        } else {
            tasks = try await store.runInsert([params], now: now).first ?? []
        }
        dispatch(tasks, of: inserted, steps: initial.steps)
        return inserted
    }

    /// Starts a run under an idempotency key: the first request creates it; a repeat with the same request
    /// (`requestHash`) gets the same run back with `created == false`. Keys older than the retention are reused.
    /// - Throws: `idempotency_key_reused` when the key was used with a different request.
    public func start(
        definition: CompiledDefinition,
        input: JSONValue,
        idempotencyKey key: String,
        requestHash: String,
        tenantID: String = defaultTenantID,
        priority: Int = 0
    ) async throws -> (run: RunRecord, created: Bool) {
        for _ in 0..<3 {
            if let existing = try await store.runFindByIdempotencyKey(tenantID: tenantID, key: key) {
                let expiry = clock.now().addingTimeInterval(-configuration.idempotencyKeyRetention.seconds)
                if existing.createdAt >= expiry {
                    guard existing.requestHash == requestHash else {
                        throw WorkflowError(
                            .idempotencyKeyReused,
                            "Idempotency-Key '\(key)' was used for run \(existing.id) with a different request; use a new key"
                        )
                    }
                    return (existing, false)
                }
                _ = try await store.idempotencyExpire(before: expiry)
            }
            do {
                let run = try await start(
                    definition: definition,
                    input: input,
                    tenantID: tenantID,
                    idempotencyKey: key,
                    requestHash: requestHash,
                    priority: priority
                )
                return (run, true)
            } catch let error as WorkflowError where error.code == .idempotencyKeyTaken {
                continue  // a concurrent request with the same key won: answer with its run
            }
        }
        throw WorkflowError(.unavailable, "could not settle Idempotency-Key '\(key)'; try again")
    }

    /// Delivers a signal to a run: the step waiting for `name` completes with `payload`, or the run keeps it.
    /// - Throws: `run_not_found`, `run_finished`, `too_many_signals`.
    @discardableResult
    public func signal(runID: String, name: String, payload: JSONValue, tenantID: String = defaultTenantID) async throws -> RunRecord {
        try await transition(runID: runID, tenantID: tenantID) { snapshot, plan, now, target in
            try RunStateMachine.signal(snapshot: snapshot, plan: plan, name: name, payload: payload, now: now, dispatch: target)
        }
    }

    /// Resumes a FAILED or CANCELLED run in place from its failed and never-run steps.
    /// - Throws: `run_not_found`, `run_not_retryable`.
    @discardableResult
    public func retry(runID: String, tenantID: String = defaultTenantID) async throws -> RunRecord {
        let run = try await transition(runID: runID, tenantID: tenantID) { snapshot, plan, now, target in
            try RunStateMachine.resume(snapshot: snapshot, plan: plan, now: now, dispatch: target)
        }
        logger.info("run retried", metadata: [LogKey.run: .string(runID)])
        return run
    }

    /// Starts a new run of the same definition version with the same input, or with `input`.
    /// - Throws: `run_not_found`, `run_not_retryable` for a `foreach` item.
    public func rerun(runID: String, input: JSONValue? = nil, tenantID: String = defaultTenantID) async throws -> RunRecord {
        guard let run = try await store.runGet(tenantID: tenantID, id: runID) else { throw WorkflowError(.runNotFound, "no run \(runID)") }
        guard run.bodyPath == nil else {
            throw WorkflowError(.runNotRetryable, "run \(runID) is an item of a foreach; rerun its parent \(run.parentRunID ?? "")")
        }
        guard let definition = try await registry.definition(id: run.definitionID, tenantID: tenantID) else {
            throw WorkflowError(.workflowNotFound, "the definition of run \(runID) is no longer registered")
        }
        guard definition.record.status == .active else {
            throw WorkflowError(.workflowRetired, "\(definition.record.name) \(definition.record.version) is retired and starts no new runs")
        }
        return try await start(definition: definition, input: input ?? run.input, tenantID: tenantID, priority: run.priority)
    }

    /// Applies one plan-aware transition to a run outside any task (signals, retries) and runs what it unblocked.
    private func transition(
        runID: String,
        tenantID: String,
        decide: @escaping @Sendable (RunSnapshot, WorkflowPlan, Date, RunStateMachine.Dispatch?) throws -> RunMutation
    ) async throws -> RunRecord {
        guard let run = try await store.runGet(tenantID: tenantID, id: runID) else { throw WorkflowError(.runNotFound, "no run \(runID)") }
        guard let plan = try await plan(for: run) else {
            throw WorkflowError(.internalError, "the definition of run \(runID) cannot be loaded")
        }
        let counted = await treeRuns(of: run, plan: plan)
        let now = clock.now()
        let target = dispatchTarget(now: now)
        let request = RunTransitionRequest(runID: runID) { snapshot in
            var snapshot = snapshot
            snapshot.treeRuns = counted
            return try decide(snapshot, plan, now, target)
        }
        switch try await applyAndDispatch([request], runs: [run], now: now).first {
        case .applied(let mutation, _):
            return mutation.run ?? run
        case .rejected(let error):
            throw error
        case .runNotFound, .fenced, nil:
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
    }

    /// Applies transitions that no worker's completion carries (signals, retries, control tasks) and runs what they
    /// unblocked; `runs[i]` is request `i`'s run as last read.
    @discardableResult
    private func applyAndDispatch(
        _ requests: [RunTransitionRequest],
        runs: [RunRecord],
        now: Date
    ) async throws
        -> [RunTransitionOutcome]
    {
        let outcomes = try await store.runTransitions(requests, now: now)
        for (run, outcome) in zip(runs, outcomes) {
            if case .applied(let mutation, let tasks) = outcome {
                dispatch(tasks, of: mutation.run ?? run, steps: mutation.steps, mutation: mutation)
            }
        }
        return outcomes
    }

    /// How many runs the tree of `run` holds, when its plan can start runs (nil otherwise, or when the
    /// count fails): the transition then holds nested fan-out to the tree's bound (`RunSnapshot.treeRuns`).
    private func treeRuns(of run: RunRecord, plan: WorkflowPlan?) async -> Int? {
        guard let plan, plan.steps.contains(where: { $0.type == .foreach || $0.type == .subWorkflow }) else { return nil }
        return try? await store.runTreeCount(rootRunID: run.treeRootID)
    }

    /// The plan a run executes: its definition's, or the nested steps of a `foreach` for an item.
    private func plan(for run: RunRecord) async throws -> WorkflowPlan? {
        try await registry.definition(id: run.definitionID, tenantID: run.tenantID)?.plan.body(at: run.bodyPath)
    }

    /// Runs the steps a transition leased to this node, and wakes the claimer for those it queued for any node.
    private func dispatch(_ tasks: [TaskRecord], of run: RunRecord, steps: [StepRunRecord], mutation: RunMutation? = nil) {
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
        if !control.isEmpty {
            local.withLock { s in for claimed in control { s.held.insert(claimed.task.id) } }
            if !controls.push(control) { releaseCapacity(control.map(\.task.id)) }
        }
        if queued { wake.signal() }
    }

    /// Where this node sends the steps it unblocks: to itself while it has room and runs, else to the shared queue.
    private func dispatchTarget(now: Date) -> RunStateMachine.Dispatch? {
        let (running, held) = local.withLock { ($0.batchingStarts && !$0.stopping, $0.held.count) }
        guard running, held < configuration.maxConcurrentSteps * 2 else { return nil }
        // One transition takes at most a worker pool's worth: the usual few steps stay on this node (no claim round
        // trip), and a run that readies thousands at once queues the rest behind the fair queue's head.
        return RunStateMachine.Dispatch(
            owner: configuration.nodeID,
            leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
            capacity: configuration.maxConcurrentSteps
        )
    }

    /// Commits queued starts in batches until shutdown, then what is left.
    private func startLoop() async {
        while let batch = await starts.next(max: configuration.commitBatchSize) {
            do {
                let tasks = try await store.runInsert(batch.map(\.params), now: clock.now())
                for (pending, inserted) in zip(batch, tasks) { pending.continuation.resume(returning: inserted) }
            } catch let error as WorkflowError where error.code == .unavailable {
                // The database is away: every start of the batch would wait for it in turn.
                storeFailed("starting runs", error)
                for pending in batch { pending.continuation.resume(throwing: error) }
            } catch {
                // One bad run must not fail its neighbours: retry them one by one to isolate it.
                for pending in batch {
                    do {
                        pending.continuation.resume(returning: try await store.runInsert([pending.params], now: clock.now()).first ?? [])
                    } catch {
                        pending.continuation.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// Cancels a run: queued steps become CANCELLED at once, executing ones are stopped cooperatively.
    /// - Throws: `run_not_found`, or `run_not_cancellable` when the run has already finished.
    public func cancel(
        runID: String,
        tenantID: String = defaultTenantID,
        reason: String = "cancelled by request"
    ) async throws
        -> RunRecord
    {
        guard try await store.runGet(tenantID: tenantID, id: runID) != nil else {
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
        let now = clock.now()
        let request = RunTransitionRequest(runID: runID) { snapshot in
            try RunStateMachine.cancel(snapshot: snapshot, reason: reason, now: now)
        }
        switch try await store.runTransitions([request], now: now).first {
        case .applied(let mutation, let tasks):
            stopExecutions(of: runID)
            if let run = mutation.run { dispatch(tasks, of: run, steps: mutation.steps, mutation: mutation) }
            logger.info("run cancelled", metadata: [LogKey.run: .string(runID)])
            guard let run = mutation.run else { throw WorkflowError(.internalError, "cancellation wrote no run") }
            return run
        case .rejected(let error):
            throw error
        case .runNotFound, .fenced, nil:
            throw WorkflowError(.runNotFound, "no run \(runID)")
        }
    }

    // MARK: service

    public func run() async throws {
        try configuration.validate()
        if store.isExclusive {
            // Nobody else can hold leases on this database: whatever is leased was left by a process that died.
            let recovered = try await store.leaseExpireOthers(owner: configuration.nodeID, now: clock.now())
            if recovered > 0 { logger.notice("recovering tasks left by a previous process", metadata: ["count": "\(recovered)"]) }
        }
        try await store.nodeHeartbeat(nodeHeartbeat())
        logger.info("engine started", metadata: ["max_concurrent_steps": "\(configuration.maxConcurrentSteps)"])
        local.withLock { $0.batchingStarts = true }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.heartbeatLoop() }
                group.addTask { await self.timeoutLoop() }
                group.addTask { await self.controlLoop() }
                for _ in 0..<self.store.concurrentWriters {
                    group.addTask { await self.commitLoop() }
                    group.addTask { await self.startLoop() }
                }
                group.addTask {
                    await withTaskGroup(of: Void.self) { nodeTasks in
                        if self.store.supportsNotify {
                            nodeTasks.addTask { await self.listenLoop() }
                        }
                        await withDiscardingTaskGroup { workers in
                            // A claim waiting on an unreachable database must not hold up shutdown.
                            workers.addTask { try? await cancelWhenGracefulShutdown { await self.claimLoop() } }
                            for _ in 0..<self.configuration.maxConcurrentSteps {
                                workers.addTask { await self.workerLoop() }
                            }
                        }
                        // Every worker has handed in its result: let the committer drain and stop.
                        self.completions.close()
                        self.controls.close()
                        let unstarted = self.local.withLock { s in
                            s.drained = true
                            return s.unstarted
                        }
                        self.heartbeatStop.signal()
                        nodeTasks.cancelAll()
                        // Hand back work claimed but never started, so another node need not wait for the lease to expire.
                        if self.local.withLock({ $0.storeFailingSince == nil }) {
                            try? await self.store.leaseRelease(owner: self.configuration.nodeID, taskIDs: unstarted)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        logger.info("engine stopped")
    }

    private func beginShutdown() {
        local.withLock {
            $0.stopping = true
            $0.batchingStarts = false
        }
        starts.finish()
        wake.close()
        let ids = ready.close().map(\.task.id)
        local.withLock { s in
            for id in ids { s.held.remove(id) }
            s.unstarted = ids
        }
    }

    private var isStopping: Bool { Task.isCancelled || local.withLock { $0.stopping } }

    // MARK: loops

    private func claimLoop() async {
        while !isStopping {
            var sleep = configuration.pollInterval
            let capacity = local.withLock { s in
                let free = configuration.maxConcurrentSteps * 2 - s.held.count
                s.claimerWaitsForCapacity = free <= 0
                return free
            }
            if capacity > 0 {
                do {
                    let now = clock.now()
                    let owner = configuration.nodeID
                    let result = try await store.taskClaim(
                        TaskClaimParams(
                            owner: owner,
                            limit: min(capacity, configuration.claimBatchSize),
                            leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
                            now: now,
                            onClaim: { snapshot, task in RunStateMachine.claim(snapshot: snapshot, task: task, owner: owner, now: now) }
                        )
                    )
                    let work = result.claimed.filter { $0.task.kind == .step }.compactMap { c in
                        c.step.map { Work(task: c.task, run: c.run, step: $0) }
                    }
                    enqueue(work)
                    let control = result.claimed.filter { $0.task.kind != .step }
                    if !control.isEmpty {
                        local.withLock { s in for claimed in control { s.held.insert(claimed.task.id) } }
                        controls.push(control)
                    }
                    storeAnswered()
                    if result.claimed.count == min(capacity, configuration.claimBatchSize) {
                        sleep = .zero  // there may be more
                    } else if let next = result.nextAvailableAt {
                        let wait = min(max(0, next.timeIntervalSince(clock.now())), configuration.pollInterval.seconds)
                        sleep = min(sleep, .milliseconds(Int64((wait * 1000).rounded(.up))))
                    }
                } catch is CancellationError {
                    break  // shutdown stopped a claim that waited on the database
                } catch {
                    storeFailed("claiming tasks", error)
                }
            }
            if sleep > .zero { await wake.wait(timeout: sleep) }
        }
    }

    private func workerLoop() async {
        while let batch = await ready.next(max: 1), let work = batch.first {
            guard let result = await execute(work) else {
                releaseCapacity([work.task.id])
                try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: [work.task.id])
                continue
            }
            let abandoned = local.withLock { s in s.abandoned.remove(work.task.id) != nil }
            if abandoned { releaseCapacity([work.task.id]) }
            // A stopped execution's outcome ("cancelled") says nothing about the step: whoever owns the task now decides.
            if !abandoned { completions.push(Completion(work: work, result: result)) }
        }
    }

    private func commitLoop() async {
        while let batch = await completions.next(max: configuration.commitBatchSize) {
            await commit(batch)
        }
    }

    /// Wakes the claimer when another node commits work; reconnects after failures until shutdown.
    private func listenLoop() async {
        while !isStopping {
            do {
                try await store.listenForWork { [wake] in wake.signal() }
            } catch {
                if isStopping { return }
                logger.warning("listening for work failed; polling until it reconnects", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func nodeHeartbeat() -> NodeHeartbeatParams {
        NodeHeartbeatParams(
            id: configuration.nodeID,
            host: ProcessInfo.processInfo.hostName,
            startedAt: startedAt,
            now: clock.now()
        )
    }

    private func heartbeatLoop() async {
        while true {
            await heartbeatStop.wait(timeout: configuration.heartbeatInterval)
            if Task.isCancelled || local.withLock({ $0.drained }) { return }
            await heartbeat()
        }
    }

    // MARK: work

    /// Forgets finished tasks and wakes the claimer if it was waiting for room.
    private func releaseCapacity(_ ids: [Int64]) {
        let wakeClaimer = local.withLock { s in
            for id in ids { s.held.remove(id) }
            defer { s.claimerWaitsForCapacity = false }
            return s.claimerWaitsForCapacity
        }
        if wakeClaimer { wake.signal() }
    }

    private func enqueue(_ work: [Work]) {
        guard !work.isEmpty else { return }
        local.withLock { s in for item in work { s.held.insert(item.task.id) } }
        ready.push(work)
    }

    /// Runs one step attempt; nil when it could not begin because the store did not answer (the task is handed back
    /// rather than charged a failed attempt).
    private func execute(_ work: Work) async -> StepResult? {
        let loaded: WorkflowPlan?
        do {
            loaded = try await plan(for: work.run)
        } catch {
            storeFailed("loading a run's definition", error)
            return nil
        }
        guard let plan = loaded, let planned = plan.step(for: work.step.stepID) else {
            return .failure(StepFailure(code: "definition_missing", message: "the run's definition cannot be loaded", retriable: true))
        }
        if planned.type.isEngineManaged { return await executeManaged(planned, work) }
        guard let executor = executors[planned.type] else {
            return .failure(StepFailure(code: "no_executor", message: "no executor for \(planned.type.rawValue)", retriable: false))
        }
        let owner = planned.id.hasSuffix(".compensate") ? String(planned.id.dropLast(".compensate".count)) : planned.id
        let execution = StepExecution(
            runID: work.run.id,
            stepID: planned.id,
            type: planned.type,
            input: work.step.input ?? .object([:]),
            attempt: work.step.attempt,
            state: work.step.state,
            now: clock.now(),
            keyGeneration: work.run.keyGenerations[owner] ?? 0
        )
        let timeout: Duration? =
            planned.timeoutMs.map { .milliseconds($0) }
            ?? (configuration.defaultStepTimeout > .zero ? configuration.defaultStepTimeout : nil)
        // An unstructured task only so that cancellation, lost leases and the timeout watcher can stop this execution;
        // it is awaited here. Timeouts are enforced by one watcher per node rather than a sleeping timer per step:
        // a cancelled sleep keeps its timer until its deadline, which cost ~800 bytes per step for five minutes.
        let handle = Task { await executor.execute(execution) }
        let deadline = timeout.map { ContinuousClock.now + $0 }
        local.withLock { $0.running[work.task.id] = (work.run.id, handle, deadline, timeout) }
        let result = await handle.value
        let timedOut = local.withLock { s in
            s.running.removeValue(forKey: work.task.id)
            return s.timedOut.removeValue(forKey: work.task.id)
        }
        if let timedOut {
            return .failure(StepFailure(code: "timeout", message: "step did not finish within \(timedOut.milliseconds) ms", retriable: true))
        }
        return result
    }

    /// How deep `sub_workflow` and `foreach` runs may nest.
    static let maxNesting = 32

    /// The steps the engine carries out itself when they reach a worker.
    private func executeManaged(_ planned: WorkflowPlan.Step, _ work: Work) async -> StepResult {
        let input = work.step.input ?? .object([:])
        switch planned.type {
        case .subWorkflow:
            guard let reference = input["workflow"]?.stringValue else {
                return .failure(StepFailure(code: "invalid_config", message: "config.workflow must render to a workflow name", retriable: false))
            }
            let childInput = input["input"] ?? .object([:])
            guard case .object = childInput else {
                return .failure(StepFailure(code: "invalid_config", message: "config.input must render to an object", retriable: false))
            }
            let child: CompiledDefinition
            do {
                // A workflow that calls itself (directly or not) must not nest without end.
                var depth = 1
                var ancestor = work.run.parentRunID
                while let id = ancestor, depth < Self.maxNesting {
                    depth += 1
                    ancestor = try await store.runGet(tenantID: work.run.tenantID, id: id)?.parentRunID
                }
                if depth >= Self.maxNesting {
                    return .failure(
                        StepFailure(
                            code: "nesting_too_deep",
                            message: "sub_workflow runs nest at most \(Self.maxNesting) deep",
                            retriable: false
                        )
                    )
                }
                // A workflow that starts itself twice per level multiplies: bound the whole tree, not only its depth.
                let limit = registry.limits.maxRunsPerTree
                if try await store.runTreeCount(rootRunID: work.run.treeRootID) >= limit {
                    return .failure(
                        StepFailure(
                            code: "run_tree_too_large",
                            message: "a run tree may hold at most \(limit) runs (--max-runs-per-tree)",
                            retriable: false
                        )
                    )
                }
                child = try await registry.resolveStartable(reference, version: input["version"]?.stringValue, tenantID: work.run.tenantID)
            } catch let error as WorkflowError where error.code == .workflowNotFound || error.code == .workflowRetired {
                return .failure(StepFailure(code: error.code.rawValue, message: error.message, retriable: false))
            } catch {
                return .failure(StepFailure(code: "registry_unavailable", message: "\(error)", retriable: true))
            }
            let now = clock.now()
            let run = RunRecord(
                id: RecordID.make(now: now),
                tenantID: work.run.tenantID,
                definitionID: child.record.id,
                workflowName: child.record.name,
                workflowVersion: child.record.version,
                status: .pending,
                input: childInput,
                parentRunID: work.run.id,
                parentStepID: work.step.stepID,
                rootRunID: work.run.treeRootID,
                priority: work.run.priority,
                createdAt: now,
                updatedAt: now
            )
            return .startChild(ChildRun(run: run, plan: child.plan))
        case .foreach:
            // Every item has finished: collect their results in item order (one read, once per foreach).
            guard let state = work.step.state, state["phase"]?.stringValue == "collect", let base = state["base"]?.stringValue,
                let total = state["total"]?.numberValue.map({ Int($0) })
            else {
                return .failure(StepFailure(code: "internal_error", message: "foreach resumed before its items finished", retriable: false))
            }
            let children: [RunRecord]
            do {
                children = try await store.runChildren(parentRunID: work.run.id, stepID: work.step.stepID, unfinishedOnly: false)
            } catch {
                return .failure(StepFailure(code: "store_unavailable", message: "\(error)", retriable: true))
            }
            let items = children.filter { $0.itemIndex.map { RecordID.item(base: base, index: $0) } == $0.id }
            guard items.count == total else {
                return .failure(
                    StepFailure(
                        code: "internal_error",
                        message: "found \(items.count) of the foreach's \(total) items",
                        retriable: true
                    )
                )
            }
            return .success(["results": .array(items.map { $0.status == .completed ? $0.output ?? .null : ["error": $0.error ?? .null] })])
        case .waitForSignal:
            // Reached only when the wait's timeout fires: a signal completes the step in its own transition.
            let name = work.step.state?["signal"]?.stringValue ?? input["signal"]?.stringValue ?? ""
            if input["on_timeout"]?.stringValue == "continue" {
                return .success(["timed_out": true, "signal": .string(name)])
            }
            return .failure(StepFailure(code: "signal_timeout", message: "no signal '\(name)' arrived in time", retriable: false))
        default:
            return .failure(StepFailure(code: "internal_error", message: "\(planned.type.rawValue) steps do not run on workers", retriable: false))
        }
    }

    // MARK: control tasks

    private func controlLoop() async {
        while let batch = await controls.next(max: 64) {
            for claimed in batch where claimed.task.kind == .cancelChildren {
                await cancelChildren(claimed)
            }
            let notifications = batch.filter { $0.task.kind == .notifyParent }
            if !notifications.isEmpty { await notifyParents(notifications) }
            let starts = batch.filter { $0.task.kind == .startRun }
            if !starts.isEmpty { await beginRuns(starts) }
            let timeouts = batch.filter { $0.task.kind == .runTimeout }
            if !timeouts.isEmpty { await timeOut(timeouts) }
            releaseCapacity(batch.map(\.task.id))
        }
    }

    /// Hands finished children to their parents: each parent's update is fenced by the child's task, so it is
    /// applied once even when two nodes hold the task in turn.
    private func notifyParents(_ batch: [ClaimedTask]) async {
        let now = clock.now()
        let target = dispatchTarget(now: now)
        var requests: [RunTransitionRequest] = []
        var targets: [RunRecord] = []
        var parents: [String: (RunRecord, WorkflowPlan)?] = [:]  // the items of a foreach share their parent
        var counts: [String: Int?] = [:]  // tree sizes by root (nil inside: not counted)
        var unreadable: [Int64] = []
        for claimed in batch {
            let child = claimed.run
            if let parentID = child.parentRunID, parents[parentID] == nil {
                do {
                    let parent = try await store.runGet(tenantID: child.tenantID, id: parentID)
                    let parentPlan = try await parent.asyncFlatMap { try await self.plan(for: $0) }
                    parents[parentID] = parent.flatMap { p in parentPlan.map { (p, $0) } }
                } catch {
                    unreadable.append(claimed.task.id)  // a failed read is not a missing parent: try again later
                    continue
                }
            }
            let found = child.parentRunID.flatMap { parents[$0] ?? nil }
            guard let (parent, plan) = found else {
                // No parent to tell (or its definition is gone): only remove the task.
                requests.append(RunTransitionRequest(runID: child.id, fence: claimed.task.fence) { _ in RunMutation() })
                targets.append(child)
                continue
            }
            targets.append(parent)
            if counts[parent.treeRootID] == nil { counts[parent.treeRootID] = .some(await treeRuns(of: parent, plan: plan)) }
            let counted = counts[parent.treeRootID] ?? nil
            requests.append(
                RunTransitionRequest(runID: parent.id, fence: claimed.task.fence, fenceRunID: child.id) { snapshot in
                    var snapshot = snapshot
                    snapshot.treeRuns = counted
                    return RunStateMachine.childFinished(snapshot: snapshot, plan: plan, child: child, now: now, dispatch: target)
                }
            )
        }
        if !unreadable.isEmpty {
            logger.warning("could not read parent runs; will retry", metadata: ["count": "\(unreadable.count)"])
            try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: unreadable)
        }
        do {
            try await applyAndDispatch(requests, runs: targets, now: now)
        } catch {
            logger.error("telling parent runs of finished children failed; will retry", metadata: ["error": "\(error)"])
            try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: batch.map(\.task.id))
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
            if case .applied(_, let tasks) = outcome { stopExecutions(of: claimed.run.id, keeping: Set(tasks.map(\.id))) }
        }
    }

    /// Applies a plan-aware transition to each claimed control task's own run, fenced by the task; on failure the
    /// tasks are handed back so that they run again.
    @discardableResult
    private func applyOwnRunTransitions(
        _ batch: [ClaimedTask],
        failure: String,
        decide: @escaping @Sendable (RunSnapshot, WorkflowPlan, TaskRecord, Date, RunStateMachine.Dispatch?) -> RunMutation
    ) async -> [RunTransitionOutcome] {
        let now = clock.now()
        let target = dispatchTarget(now: now)
        var requests: [RunTransitionRequest] = []
        for claimed in batch {
            let plan = try? await plan(for: claimed.run)
            let counted = await treeRuns(of: claimed.run, plan: plan)
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
            return try await applyAndDispatch(requests, runs: batch.map(\.run), now: now)
        } catch {
            logger.error("\(failure) failed; will retry", metadata: ["error": "\(error)"])
            try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: batch.map(\.task.id))
            return []
        }
    }

    /// Cancels the unfinished children of a run (or of one of its steps), then removes the task.
    private func cancelChildren(_ claimed: ClaimedTask) async {
        let parentID = claimed.run.id
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
                let chunk = children[start..<min(children.count, start + configuration.commitBatchSize)]
                start += chunk.count
                let now = clock.now()
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
                let outcomes = try await applyAndDispatch(Array(requests), runs: Array(chunk), now: now)
                for (child, outcome) in zip(chunk, outcomes) {
                    if case .applied = outcome { stopExecutions(of: child.id) }
                }
            }
            _ = try await store.runTransitions(
                [RunTransitionRequest(runID: parentID, fence: claimed.task.fence) { _ in RunMutation() }],
                now: clock.now()
            )
            if !children.isEmpty {
                logger.info("cancelled child runs", metadata: [LogKey.run: .string(parentID), "count": "\(children.count)"])
            }
        } catch {
            logger.error("cancelling child runs failed; will retry", metadata: [LogKey.run: .string(parentID), "error": "\(error)"])
            try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: [claimed.task.id])
        }
    }

    /// Stops executions that outlive their timeout; runs until the workers have drained.
    private func timeoutLoop() async {
        while !local.withLock({ $0.drained }) {
            try? await Task.sleep(for: .milliseconds(50))
            let now = ContinuousClock.now
            let overdue = local.withLock { s -> [Task<StepResult, Never>] in
                s.running.compactMap { id, running in
                    guard let deadline = running.deadline, let timeout = running.timeout, deadline <= now, s.timedOut[id] == nil,
                        !s.abandoned.contains(id)
                    else { return nil }
                    s.timedOut[id] = timeout
                    return running.task
                }
            }
            for task in overdue { task.cancel() }
        }
    }

    /// Records a batch of outcomes in one transaction, then runs what they unblocked.
    private func commit(_ batch: [Completion]) async {
        var plans: [String: WorkflowPlan] = [:]
        func key(_ run: RunRecord) -> String { run.definitionID + "/" + (run.bodyPath ?? "") }
        for completion in batch where plans[key(completion.work.run)] == nil {
            plans[key(completion.work.run)] = try? await plan(for: completion.work.run)
        }
        var counts: [String: Int?] = [:]  // by tree root: sizes of trees whose runs can start runs (one count per tree)
        for completion in batch where counts[completion.work.run.treeRootID] == nil {
            counts[completion.work.run.treeRootID] = .some(await treeRuns(of: completion.work.run, plan: plans[key(completion.work.run)]))
        }
        let now = clock.now()
        let target = dispatchTarget(now: now)
        let requests = batch.map { completion in
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

        // Results are worth keeping (dropping one runs its step again): an unreachable store is waited for as long as
        // this node's leases can still be current; any other failure is tried a few times.
        var outcomes: [RunTransitionOutcome]?
        if isStopping && local.withLock({ $0.storeFailingSince != nil }) {
            logger.warning("shutting down with the database away: step results are dropped and run again", metadata: ["count": "\(batch.count)"])
            releaseCapacity(batch.map(\.work.task.id))
            return
        }
        let giveUp = ContinuousClock.now + configuration.leaseDuration
        var attempt = 0
        while true {
            attempt += 1
            do {
                outcomes = try await store.runTransitions(requests, now: now)
                storeAnswered()
                break
            } catch is CancellationError {
                break  // cancelled past the shutdown grace: the leases lapse and the steps run again
            } catch {
                let unavailable = (error as? WorkflowError)?.code == .unavailable
                if unavailable {
                    storeFailed("recording step results", error)
                } else {
                    logger.error("recording step results failed", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                }
                // Shutting down with the database away, waiting helps nobody: the leases lapse and the steps run again.
                guard unavailable ? ContinuousClock.now < giveUp && !isStopping : attempt < 5 else { break }
                try? await Task.sleep(for: .milliseconds(min(2000, 100 * attempt * attempt)))
            }
        }
        let finishedIDs = batch.map(\.work.task.id)
        releaseCapacity(finishedIDs)
        guard let outcomes else {
            // The results are lost, but the tasks are still leased to us: hand them back so they run again (or let the
            // leases lapse, if the database is away).
            if local.withLock({ $0.storeFailingSince == nil }) {
                try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: finishedIDs)
            }
            wake.signal()
            return
        }

        for (completion, outcome) in zip(batch, outcomes) {
            switch outcome {
            case .applied(let mutation, let tasks):
                dispatch(tasks, of: mutation.run ?? completion.work.run, steps: mutation.steps, mutation: mutation)
                logStep(completion, mutation)
            case .fenced:
                logger.notice(
                    "step result discarded: this node no longer holds the task (run cancelled, or lease taken over)",
                    metadata: [LogKey.run: .string(completion.work.run.id), LogKey.step: .string(completion.work.step.stepID)]
                )
            case .runNotFound:
                logger.error("step result for a missing run", metadata: [LogKey.run: .string(completion.work.run.id)])
            case .rejected(let error):
                logger.error("step result rejected", metadata: [LogKey.run: .string(completion.work.run.id), "error": "\(error)"])
            }
        }
    }

    private func logStep(_ completion: Completion, _ mutation: RunMutation) {
        guard logger.logLevel <= .debug else { return }
        logger.debug(
            "step attempt recorded",
            metadata: [
                LogKey.run: .string(completion.work.run.id), LogKey.step: .string(completion.work.step.stepID),
                "events": .string(mutation.events.map(\.type).joined(separator: ",")),
            ]
        )
    }

    private func heartbeat() async {
        let now = clock.now()
        do {
            try await store.nodeHeartbeat(nodeHeartbeat())
            // Only tasks held before the renewal began can be judged by it: work claimed meanwhile is not in its answer.
            let heldBefore = local.withLock { $0.held }
            let held = try await store.leaseRenew(
                LeaseRenewParams(
                    owner: configuration.nodeID,
                    leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds),
                    now: now
                )
            )
            let (lost, release) = local.withLock { s -> ([Task<StepResult, Never>], [Int64]) in
                // Held here but no longer ours in the database: our lease expired and another node took the task over.
                let lostIDs = heldBefore.subtracting(held).intersection(s.held)
                let lost = lostIDs.compactMap { id -> Task<StepResult, Never>? in
                    guard let running = s.running[id] else { return nil }
                    s.abandoned.insert(id)
                    return running.task
                }
                let stale = held.subtracting(s.held)
                let release = Array(stale.intersection(s.suspectedStale))
                s.suspectedStale = stale
                return (lost, release)
            }
            if !lost.isEmpty { logger.warning("lost the lease of running steps; stopping them", metadata: ["count": "\(lost.count)"]) }
            for task in lost { task.cancel() }
            if !release.isEmpty {
                try await store.leaseRelease(owner: configuration.nodeID, taskIDs: release)
                wake.signal()
            }
            storeAnswered()
        } catch {
            storeFailed("renewing leases", error)
        }
    }

    private func stopExecutions(of runID: String, keeping: Set<Int64> = []) {
        let tasks = local.withLock { s in
            s.running.filter { $0.value.runID == runID && !keeping.contains($0.key) }.map { id, running in
                s.abandoned.insert(id)
                return running.task
            }
        }
        for task in tasks { task.cancel() }
    }
}

extension Optional {
    fileprivate func asyncFlatMap<T>(_ transform: (Wrapped) async throws -> T?) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
