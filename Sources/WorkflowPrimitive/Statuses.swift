/// The statuses of runs, steps and definition versions: stored by the drivers, sent over the API, read by the client.

/// Lifecycle of a run.
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    /// The run failed and is running the compensations of the steps that had succeeded (saga).
    case compensating = "COMPENSATING"
    case completed = "COMPLETED"
    case failed = "FAILED"
    case cancelled = "CANCELLED"

    public var isTerminal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// Lifecycle of one step of a run.
public enum StepStatus: String, Sendable, Codable, CaseIterable {
    case queued = "QUEUED"
    case executing = "EXECUTING"
    /// Waiting for something outside the worker: a signal, a child run, or the items of a `foreach`.
    case waiting = "WAITING"
    case success = "SUCCESS"
    case failed = "FAILED"
    case skipped = "SKIPPED"
    case cancelled = "CANCELLED"

    public var isTerminal: Bool { self == .success || self == .failed || self == .skipped || self == .cancelled }
}

/// Whether a definition version may start runs.
public enum DefinitionStatus: String, Sendable, Codable, CaseIterable {
    /// Registered under an approval policy and not yet submitted; starts no runs.
    case draft
    /// Submitted for activation, waiting for its approvers; starts no runs.
    case pendingApproval = "pending_approval"
    case active
    /// Still starts runs when named by version, but is no longer chosen as the latest.
    case deprecated
    /// Starts no new runs; runs in progress finish on it.
    case retired

    /// Whether a run may start on a version in this state.
    public var startsRuns: Bool { self == .active || self == .deprecated }
}
