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
    private let local = Mutex(LocalState())
    private let startedAt: Date

    public init(
        configuration: EngineConfiguration, store: any WorkflowStore, registry: WorkflowRegistry, executors: StepExecutors,
        clock: any WorkflowClock = SystemClock(), logger: Logger
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

    // MARK: commands

    /// Starts a run of `definition`. Returns once the run and its first tasks are committed.
    /// - Throws: `invalid_input` when `input` is not a JSON object.
    public func start(
        definition: CompiledDefinition, input: JSONValue, tenantID: String = defaultTenantID, idempotencyKey: String? = nil,
        priority: Int = 0, parentRunID: String? = nil
    ) async throws -> RunRecord {
        let input = input.isNull ? .object([:]) : input
        guard case .object = input else {
            throw WorkflowError(.invalidInput, "the run input must be a JSON object", issues: [
                ValidationIssue(pointer: JSONPointer.root.appending("input"), message: "must be an object, got \(input.typeName)")
            ])
        }
        let now = clock.now()
        let record = definition.record
        let run = RunRecord(
            id: RecordID.make(now: now), tenantID: tenantID, definitionID: record.id, workflowName: record.name,
            workflowVersion: record.version, status: .pending, input: input, idempotencyKey: idempotencyKey,
            parentRunID: parentRunID, priority: priority, createdAt: now, updatedAt: now)
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

    /// Runs the steps a transition leased to this node, and wakes the claimer for those it queued for any node.
    private func dispatch(_ tasks: [TaskRecord], of run: RunRecord, steps: [StepRunRecord]) {
        var mine: [Work] = []
        var queued = false
        for task in tasks {
            if task.leaseOwner == configuration.nodeID, let stepID = task.stepID, let step = steps.last(where: { $0.stepID == stepID }) {
                mine.append(Work(task: task, run: run, step: step))
            } else {
                queued = true
            }
        }
        enqueue(mine)
        if queued { wake.signal() }
    }

    /// Where this node sends the steps it unblocks: to itself while it has room and runs, else to the shared queue.
    private func dispatchTarget(now: Date) -> RunStateMachine.Dispatch? {
        let (running, held) = local.withLock { ($0.batchingStarts && !$0.stopping, $0.held.count) }
        guard running, held < configuration.maxConcurrentSteps * 2 else { return nil }
        return RunStateMachine.Dispatch(
            owner: configuration.nodeID, leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds))
    }

    /// Commits queued starts in batches until shutdown, then what is left.
    private func startLoop() async {
        while let batch = await starts.next(max: configuration.commitBatchSize) {
            do {
                let tasks = try await store.runInsert(batch.map(\.params), now: clock.now())
                for (pending, inserted) in zip(batch, tasks) { pending.continuation.resume(returning: inserted) }
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
    public func cancel(runID: String, tenantID: String = defaultTenantID, reason: String = "cancelled by request") async throws
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
        case .applied(let mutation, _):
            stopExecutions(of: runID)
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
                            workers.addTask { await self.claimLoop() }
                            for _ in 0..<self.configuration.maxConcurrentSteps {
                                workers.addTask { await self.workerLoop() }
                            }
                        }
                        // Every worker has handed in its result: let the committer drain and stop.
                        self.completions.close()
                        let unstarted = self.local.withLock { s in
                            s.drained = true
                            return s.unstarted
                        }
                        self.heartbeatStop.signal()
                        nodeTasks.cancelAll()
                        // Hand back work claimed but never started, so another node need not wait for the lease to expire.
                        try? await self.store.leaseRelease(owner: self.configuration.nodeID, taskIDs: unstarted)
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
            ids.forEach { s.held.remove($0) }
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
                    let result = try await store.taskClaim(TaskClaimParams(
                        owner: owner, limit: min(capacity, configuration.claimBatchSize),
                        leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds), now: now,
                        onClaim: { snapshot, task in RunStateMachine.claim(snapshot: snapshot, task: task, owner: owner, now: now) }))
                    let work = result.claimed.compactMap { c in c.step.map { Work(task: c.task, run: c.run, step: $0) } }
                    enqueue(work)
                    if result.claimed.count == min(capacity, configuration.claimBatchSize) {
                        sleep = .zero  // there may be more
                    } else if let next = result.nextAvailableAt {
                        let wait = max(0, next.timeIntervalSince(clock.now()))
                        sleep = min(sleep, .milliseconds(Int64((wait * 1000).rounded(.up))))
                    }
                } catch {
                    logger.error("claiming tasks failed", metadata: ["error": "\(error)"])
                }
            }
            if sleep > .zero { await wake.wait(timeout: sleep) }
        }
    }

    private func workerLoop() async {
        while let batch = await ready.next(max: 1), let work = batch.first {
            let result = await execute(work)
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
            id: configuration.nodeID, host: ProcessInfo.processInfo.hostName, startedAt: startedAt, now: clock.now())
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
            ids.forEach { s.held.remove($0) }
            defer { s.claimerWaitsForCapacity = false }
            return s.claimerWaitsForCapacity
        }
        if wakeClaimer { wake.signal() }
    }

    private func enqueue(_ work: [Work]) {
        guard !work.isEmpty else { return }
        local.withLock { s in work.forEach { s.held.insert($0.task.id) } }
        ready.push(work)
    }

    private func execute(_ work: Work) async -> StepResult {
        guard let definition = try? await registry.definition(id: work.run.definitionID, tenantID: work.run.tenantID),
            let index = definition.plan.stepIndex[work.step.stepID]
        else {
            return .failure(StepFailure(code: "definition_missing", message: "the run's definition cannot be loaded", retriable: true))
        }
        let planned = definition.plan.steps[index]
        guard let executor = executors[planned.type] else {
            return .failure(StepFailure(code: "no_executor", message: "no executor for \(planned.type.rawValue)", retriable: false))
        }
        let execution = StepExecution(
            runID: work.run.id, stepID: planned.id, type: planned.type, input: work.step.input ?? .object([:]),
            attempt: work.step.attempt, state: work.step.state, now: clock.now())
        let timeout: Duration? = planned.timeoutMs.map { .milliseconds($0) }
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
        for completion in batch where plans[completion.work.run.definitionID] == nil {
            plans[completion.work.run.definitionID] = try? await registry.definition(
                id: completion.work.run.definitionID, tenantID: completion.work.run.tenantID)?.plan
        }
        let now = clock.now()
        let target = dispatchTarget(now: now)
        let requests = batch.map { completion in
            let plan = plans[completion.work.run.definitionID]
            let stepID = completion.work.step.stepID
            let result = completion.result
            let random = Double.random(in: 0..<1)
            return RunTransitionRequest(runID: completion.work.run.id, fence: completion.work.task.fence) { snapshot in
                guard let plan else { throw WorkflowError(.internalError, "the run's definition cannot be loaded") }
                return RunStateMachine.complete(
                    snapshot: snapshot, plan: plan, stepID: stepID, result: result, now: now, dispatch: target, random: random)
            }
        }

        var outcomes: [RunTransitionOutcome]?
        for attempt in 1...5 {
            do {
                outcomes = try await store.runTransitions(requests, now: now)
                break
            } catch {
                logger.error("recording step results failed", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: .milliseconds(100 * attempt * attempt))
            }
        }
        let finishedIDs = batch.map(\.work.task.id)
        releaseCapacity(finishedIDs)
        guard let outcomes else {
            // The results are lost, but the tasks are still leased to us: hand them back so they run again.
            try? await store.leaseRelease(owner: configuration.nodeID, taskIDs: finishedIDs)
            wake.signal()
            return
        }

        for (completion, outcome) in zip(batch, outcomes) {
            switch outcome {
            case .applied(let mutation, let tasks):
                dispatch(tasks, of: mutation.run ?? completion.work.run, steps: mutation.steps)
                logStep(completion, mutation)
            case .fenced:
                logger.notice(
                    "step result discarded: this node no longer holds the task (run cancelled, or lease taken over)",
                    metadata: [LogKey.run: .string(completion.work.run.id), LogKey.step: .string(completion.work.step.stepID)])
            case .runNotFound:
                logger.error("step result for a missing run", metadata: [LogKey.run: .string(completion.work.run.id)])
            case .rejected(let error):
                logger.error("step result rejected", metadata: [LogKey.run: .string(completion.work.run.id), "error": "\(error)"])
            }
        }
    }

    private func logStep(_ completion: Completion, _ mutation: RunMutation) {
        guard logger.logLevel <= .debug else { return }
        logger.debug("step attempt recorded", metadata: [
            LogKey.run: .string(completion.work.run.id), LogKey.step: .string(completion.work.step.stepID),
            "events": .string(mutation.events.map(\.type).joined(separator: ",")),
        ])
    }

    private func heartbeat() async {
        let now = clock.now()
        do {
            try await store.nodeHeartbeat(nodeHeartbeat())
            // Only tasks held before the renewal began can be judged by it: work claimed meanwhile is not in its answer.
            let heldBefore = local.withLock { $0.held }
            let held = try await store.leaseRenew(LeaseRenewParams(
                owner: configuration.nodeID, leaseExpiresAt: now.addingTimeInterval(configuration.leaseDuration.seconds), now: now))
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
        } catch {
            logger.error("renewing leases failed", metadata: ["error": "\(error)"])
        }
    }

    private func stopExecutions(of runID: String) {
        let tasks = local.withLock { s in
            s.running.filter { $0.value.runID == runID }.map { id, running in
                s.abandoned.insert(id)
                return running.task
            }
        }
        for task in tasks { task.cancel() }
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
