import Foundation
import Logging
import ServiceLifecycle
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// Executes runs durably on one node: claims tasks, runs their steps, records each outcome (many per transaction),
/// and runs what an outcome unblocked right away instead of waiting for a poll.
///
/// Every state change is committed before anything reports it. A step's completion is written only while this
/// node's claim of its task is current (fencing), so a late or duplicate worker cannot record it twice.
///
/// This type is a facade over the node's services (see docs/architecture.md): `RunCommands` (what callers ask),
/// `Claimer`, `StepRunner` (with `ManagedSteps`), `Committer`, `ControlTasks` and `LeaseKeeper`, which share an
/// `EngineNode` (queues, and the `NodeBookkeeping` of held work).
public final class WorkflowEngine: Service, Sendable {
    public let configuration: EngineConfiguration
    private let node: EngineNode
    private let commands: RunCommands
    private let claimer: Claimer
    private let runner: StepRunner
    private let committer: Committer
    private let controls: ControlTasks
    private let leases: LeaseKeeper

    public init(
        configuration: EngineConfiguration,
        store: any WorkflowStore,
        registry: WorkflowRegistry,
        executors: StepExecutors,
        clock: any WorkflowClock = SystemClock(),
        metrics: WorkflowMetrics? = nil,
        logger: Logger
    ) {
        let node = EngineNode(
            configuration: configuration,
            store: store,
            registry: registry,
            clock: clock,
            metrics: metrics,
            logger: logger
        )
        self.configuration = configuration
        self.node = node
        self.commands = RunCommands(node: node)
        self.claimer = Claimer(node: node)
        self.runner = StepRunner(node: node, executors: executors, managed: ManagedSteps(node: node))
        self.committer = Committer(node: node)
        self.controls = ControlTasks(node: node)
        self.leases = LeaseKeeper(node: node)
    }

    /// Step attempts executing on this node right now.
    public var activeExecutions: Int { node.books.withLock { $0.running.count } }

    /// What this node measures, if anything.
    public var metrics: WorkflowMetrics? { node.metrics }

    /// Step attempts this node executes at once at most.
    public var capacity: Int { node.capacity }

    /// Why this node should not get traffic now (shutting down, or its store failing), or nil when it is ready.
    public var notReadyReason: String? { node.books.withLock { $0.notReadyReason } }

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
        parentRunID: String? = nil,
        createdBy: String? = nil,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await commands.start(
            definition: definition,
            input: input,
            tenantID: tenantID,
            idempotencyKey: idempotencyKey,
            requestHash: requestHash,
            priority: priority,
            parentRunID: parentRunID,
            createdBy: createdBy,
            audit: audit
        )
    }

    /// The rows of a new run, to be written by the caller with writes of its own (a schedule's fire); once written,
    /// hand the tasks the store returned to ``started(_:tasks:)``, or the run waits for its leases to lapse.
    public func prepareStart(
        definition: CompiledDefinition,
        input: JSONValue,
        tenantID: String,
        createdBy: String?,
        events: [NewEvent] = []
    ) throws -> PreparedStart {
        try commands.prepareStart(
            definition: definition,
            input: input,
            tenantID: tenantID,
            idempotencyKey: nil,
            requestHash: nil,
            priority: 0,
            parentRunID: nil,
            createdBy: createdBy,
            events: events
        )
    }

    /// Runs what a prepared start's first transition queued on this node.
    public func started(_ prepared: PreparedStart, tasks: [TaskRecord]) {
        commands.started(prepared, tasks: tasks)
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
        priority: Int = 0,
        createdBy: String? = nil,
        audit: AuditContext? = nil
    ) async throws -> (run: RunRecord, created: Bool) {
        try await commands.start(
            definition: definition,
            input: input,
            idempotencyKey: key,
            requestHash: requestHash,
            tenantID: tenantID,
            priority: priority,
            createdBy: createdBy,
            audit: audit
        )
    }

    /// Delivers a signal to a run: the step waiting for `name` completes with `payload`, or the run keeps it.
    /// - Throws: `run_not_found`, `run_finished`, `too_many_signals`.
    @discardableResult
    public func signal(
        runID: String,
        name: String,
        payload: JSONValue,
        tenantID: String = defaultTenantID,
        actor: String? = nil,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await commands.signal(runID: runID, name: name, payload: payload, tenantID: tenantID, actor: actor, audit: audit)
    }

    /// Records a decision on an `approval` step.
    /// - Throws: `run_not_found`, `approval_not_pending`, `self_approval`, `forbidden`, `already_decided`.
    @discardableResult
    public func decideApproval(
        runID: String,
        stepID: String,
        decision: RunStateMachine.ApprovalDecision,
        tenantID: String = defaultTenantID,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await commands.decideApproval(runID: runID, stepID: stepID, decision: decision, tenantID: tenantID, audit: audit)
    }

    /// Resumes a FAILED or CANCELLED run in place from its failed and never-run steps.
    /// - Throws: `run_not_found`, `run_not_retryable`.
    @discardableResult
    public func retry(runID: String, tenantID: String = defaultTenantID, actor: String? = nil, audit: AuditContext? = nil) async throws -> RunRecord {
        try await commands.retry(runID: runID, tenantID: tenantID, actor: actor, audit: audit)
    }

    /// Starts a new run of the same definition version with the same input, or with `input`.
    /// - Throws: `run_not_found`, `run_not_retryable` for a `foreach` item.
    public func rerun(
        runID: String,
        input: JSONValue? = nil,
        tenantID: String = defaultTenantID,
        actor: String? = nil,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await commands.rerun(runID: runID, input: input, tenantID: tenantID, actor: actor, audit: audit)
    }

    /// Cancels a run: queued steps become CANCELLED at once, executing ones are stopped cooperatively.
    /// - Throws: `run_not_found`, or `run_not_cancellable` when the run has already finished.
    public func cancel(
        runID: String,
        tenantID: String = defaultTenantID,
        reason: String = "cancelled by request",
        actor: String? = nil,
        audit: AuditContext? = nil
    ) async throws -> RunRecord {
        try await commands.cancel(runID: runID, tenantID: tenantID, reason: reason, actor: actor, audit: audit)
    }

    // MARK: service

    public func run() async throws {
        try configuration.validate()
        let store = node.store
        if store.isExclusive {
            // Nobody else can hold leases on this database: whatever is leased was left by a process that died.
            let recovered = try await store.leaseExpireOthers(owner: configuration.nodeID, now: node.clock.now())
            if recovered > 0 { node.logger.notice("recovering tasks left by a previous process", metadata: ["count": "\(recovered)"]) }
        }
        try await store.nodeHeartbeat(node.nodeHeartbeat())
        node.logger.info("engine started", metadata: ["max_concurrent_steps": "\(configuration.maxConcurrentSteps)"])
        node.books.withLock { $0.started() }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.leases.run() }
                group.addTask { await self.runner.watchTimeouts() }
                group.addTask { await self.controls.run() }
                for _ in 0..<store.concurrentWriters {
                    group.addTask { await self.committer.recordResults() }
                    group.addTask { await self.committer.insertStarts() }
                }
                group.addTask { await self.runWorkers() }
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        node.logger.info("engine stopped")
    }

    /// The claimer, the listener and the workers; once the workers have stopped, the committer and control tasks
    /// drain and stop, and work claimed but never started is handed back.
    private func runWorkers() async {
        await withTaskGroup(of: Void.self) { nodeTasks in
            if node.store.supportsNotify {
                nodeTasks.addTask { await self.claimer.listen() }
            }
            await withDiscardingTaskGroup { workers in
                // A claim waiting on an unreachable database must not hold up shutdown.
                workers.addTask { try? await cancelWhenGracefulShutdown { await self.claimer.run() } }
                for _ in 0..<configuration.maxConcurrentSteps {
                    workers.addTask { await self.runner.work() }
                }
            }
            // Every worker has handed in its result: let the committer drain and stop.
            node.completions.close()
            node.controls.close()
            let unstarted = node.books.withLock { $0.drain() }
            node.heartbeatStop.signal()
            nodeTasks.cancelAll()
            // Hand back work claimed but never started, so another node need not wait for the lease to expire.
            if !node.storeIsFailing { await node.handBack(unstarted) }
        }
    }

    private func beginShutdown() {
        node.books.withLock { $0.beginShutdown() }
        node.starts.finish()
        node.wake.close()
        let queued = node.ready.close().map(\.task.id)
        node.books.withLock { $0.closedWithUnstarted(queued) }
    }
}
