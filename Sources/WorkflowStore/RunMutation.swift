import Foundation
import WorkflowPrimitive

/// A run as a transition sees it: the run row, its step rows, and the next history sequence number.
public struct RunSnapshot: Sendable {
    public var run: RunRecord
    public var steps: [String: StepRunRecord]
    public var nextEventSeq: Int
    /// How many runs the run's tree holds, when the caller counted them (the engine does before a transition that
    /// may start `foreach` items): the tree's bound (`--max-runs-per-tree`) holds for nested fan-out too. Not stored.
    public var treeRuns: Int?

    public init(run: RunRecord, steps: [String: StepRunRecord], nextEventSeq: Int) {
        self.run = run
        self.steps = steps
        self.nextEventSeq = nextEventSeq
    }
}

/// The writes of one state transition of one run, applied by the driver in one transaction.
///
/// The engine computes it from a ``RunSnapshot`` with pure code; the driver only writes it.
public struct RunMutation: Sendable {
    /// The run row as it must be after the transition, or `nil` to leave it.
    public var run: RunRecord?
    /// Step rows to insert or replace.
    public var steps: [StepRunRecord]
    /// Step rows to delete (a retried run forgets the steps it will run again); applied before `steps`.
    public var deleteSteps: [String]
    /// History entries to append, in order; the driver numbers them.
    public var events: [NewEvent]
    /// Queue rows to delete before inserting `newTasks`.
    public var deleteTasks: TaskDeletion
    public var newTasks: [NewTask]
    /// Child runs created by this transition (a `sub_workflow` child, the items of a `foreach`), each with its first
    /// transition. They are new rows, so no lock is taken on them.
    public var spawn: [RunInsertParams]
    /// Parked child runs (created with their tasks far in the future) whose tasks become available now.
    public var releaseRuns: [String]
    /// Audit entries of what a person did by this transition (started, cancelled, retried, signalled, decided an
    /// approval), written in the same transaction.
    public var audit: [AuditRecord]
    /// Events for subscribers (webhooks, live streams) this transition causes, written in the same transaction.
    public var outbox: [OutboxEvent] = []

    public init(
        run: RunRecord? = nil,
        steps: [StepRunRecord] = [],
        deleteSteps: [String] = [],
        events: [NewEvent] = [],
        deleteTasks: TaskDeletion = .none,
        newTasks: [NewTask] = [],
        spawn: [RunInsertParams] = [],
        releaseRuns: [String] = [],
        audit: [AuditRecord] = []
    ) {
        self.run = run
        self.steps = steps
        self.deleteSteps = deleteSteps
        self.events = events
        self.deleteTasks = deleteTasks
        self.newTasks = newTasks
        self.spawn = spawn
        self.releaseRuns = releaseRuns
        self.audit = audit
    }

    /// Whether this mutation deletes `task` (a claim that finished the work itself, such as a run timeout).
    public func removes(_ task: TaskRecord) -> Bool {
        switch deleteTasks {
        case .none: false
        case .all: !task.kind.isControl
        case .steps(let ids): task.stepID.map(ids.contains) ?? false
        }
    }

    public var isEmpty: Bool {
        run == nil && steps.isEmpty && deleteSteps.isEmpty && events.isEmpty && newTasks.isEmpty && deleteTasks == .none
            && spawn.isEmpty && releaseRuns.isEmpty && audit.isEmpty && outbox.isEmpty
    }

    /// Whether this transition queued work any node may claim (so other nodes should be told).
    public var announcesWork: Bool {
        newTasks.contains { $0.leaseOwner == nil } || !releaseRuns.isEmpty || spawn.contains { $0.initial.announcesWork }
    }
}

/// A history entry to append.
public struct NewEvent: Sendable, Hashable {
    public var type: String
    public var stepID: String?
    public var data: JSONValue

    public init(_ type: String, stepID: String? = nil, data: JSONValue = .object([:])) {
        self.type = type
        self.stepID = stepID
        self.data = data
    }
}

/// Which of a run's queued tasks a transition removes.
public enum TaskDeletion: Sendable, Hashable {
    case none
    /// Every step and timeout task of the run (it finished or was cancelled); control tasks stay.
    case all
    /// The tasks of these steps.
    case steps([String])
}

extension TaskDeletion {
    /// This deletion widened to the tasks of `stepIDs` too.
    public func adding(steps stepIDs: [String]) -> TaskDeletion {
        switch self {
        case .all: .all
        case .none: stepIDs.isEmpty ? .none : .steps(stepIDs)
        case .steps(let ids): .steps(ids + stepIDs.filter { !ids.contains($0) })
        }
    }
}

/// A task to enqueue. With a lease it is claimed by that owner at once (the finishing node runs what it unblocked).
public struct NewTask: Sendable, Hashable {
    public var stepID: String?
    public var kind: TaskKind
    public var availableAt: Date
    public var priority: Int
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?

    public init(
        stepID: String?,
        kind: TaskKind,
        availableAt: Date,
        priority: Int = 0,
        leaseOwner: String? = nil,
        leaseExpiresAt: Date? = nil
    ) {
        self.stepID = stepID
        self.kind = kind
        self.availableAt = availableAt
        self.priority = priority
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
    }
}

extension RunMutation {
    /// Runs this mutation creates, with those their own first transitions create.
    public var spawnedRuns: Int { spawn.reduce(spawn.count) { $0 + $1.initial.spawnedRuns } }

    /// How far apart one transition's queued steps are placed in the shared queue, beyond the first `queueBurst`.
    public static let queueSpacing: TimeInterval = 0.010
    /// Steps of one transition placed together at the queue's head.
    public static let queueBurst = 32

    /// Where each new task goes in the shared queue (`fair_at`), in `newTasks` order. The queue is taken in this
    /// order (after priority); a task may run once `availableAt` has come, and its place never delays it.
    ///
    /// This is start-time fair queuing with runs as the flows. The queue's virtual time is `head`, the place of the
    /// first task waiting in it (or now, when nothing waits): a transition's first 32 queued steps are placed at the
    /// head together (so a usual fan-out is claimed in one batch and its run loaded once), the i-th beyond them at
    /// head + (i − 31) × 10 ms. A run that readies thousands of steps at once is thus spread out, and a newcomer
    /// lands right behind the head, however long the backlog: it waits for at most 32 steps per run ahead of it,
    /// not for the backlog to drain. The backlog keeps its places, so it is never starved either.
    public func queueTimes(now: Date, head: Date?) -> [Date] {
        zip(newTasks, queueOffsets()).map { Self.queueTime(of: $0, offset: $1, now: now, head: head) }
    }

    /// Each new task's offset among the steps this transition queues (nil for leased and control tasks).
    public func queueOffsets() -> [Int?] {
        var queued = 0
        return newTasks.map { task in
            guard task.leaseOwner == nil, task.kind == .step else { return nil }
            defer { queued += 1 }
            return queued
        }
    }

    /// `fair_at` of one task (see `queueTimes`).
    public static func queueTime(of task: NewTask, offset: Int?, now: Date, head: Date?) -> Date {
        // A step that may not run yet (a retry's backoff, a delay) waits at its time: it must not hold the head.
        guard let offset, task.availableAt <= now else { return task.availableAt }
        // The first steps of a burst stay together (claimed in one batch, their run loaded once); only a wide one
        // is spread out.
        return min(now, head ?? now).addingTimeInterval(Double(max(0, offset - queueBurst + 1)) * queueSpacing)
    }
}

/// A transition to apply to one run, as part of a batch.
public struct RunTransitionRequest: Sendable {
    public var runID: String
    /// When set, the transition applies only if this claim is still current; the task is deleted with it.
    public var fence: TaskFence?
    /// The run the fenced task belongs to, when not `runID` (a child's `notify_parent` task fences its parent's update).
    public var fenceRunID: String?
    /// Computes the writes from the locked snapshot. Throwing rejects this request alone.
    public var decide: @Sendable (RunSnapshot) throws -> RunMutation

    public init(
        runID: String,
        fence: TaskFence? = nil,
        fenceRunID: String? = nil,
        decide: @escaping @Sendable (RunSnapshot) throws -> RunMutation
    ) {
        self.runID = runID
        self.fence = fence
        self.fenceRunID = fenceRunID
        self.decide = decide
    }
}

/// What became of one transition request.
public enum RunTransitionOutcome: Sendable {
    /// Written; `tasks` are the rows inserted, with their ids and lease tokens.
    case applied(RunMutation, tasks: [TaskRecord])
    /// The fence no longer matched: another claim owns the task, or it was deleted (run cancelled).
    case fenced
    case runNotFound
    /// `decide` threw; nothing of this request was written.
    case rejected(any Error)
}
