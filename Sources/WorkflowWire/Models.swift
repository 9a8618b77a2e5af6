import WorkflowPrimitive

// The bodies the REST API sends and the client reads (docs/api.md describes them). Times are RFC 3339 strings in UTC
// with milliseconds (`WireCoding.time`). A `@Nullable` field is always sent (`null` when absent); a plain optional
// one is left out when absent.

/// A registered version of a workflow definition.
public struct Workflow: PageItem, Hashable {
    public static let pageKey = "workflows"
    public var id: String
    public var name: String
    public var version: String
    @Nullable public var description: String?
    public var definition: JSONValue
    public var checksum: String
    public var status: DefinitionStatus
    public var createdAt: String
    /// Who registered the version.
    @Nullable public var createdBy: String?
    /// Who approved its activation (under an approval policy).
    public var approvals: [ApprovalInfo]

    public init(
        id: String,
        name: String,
        version: String,
        description: String?,
        definition: JSONValue,
        checksum: String,
        status: DefinitionStatus,
        createdAt: String,
        createdBy: String? = nil,
        approvals: [ApprovalInfo] = []
    ) {
        self.approvals = approvals
        self.createdBy = createdBy
        self.id = id
        self.name = name
        self.version = version
        self.description = description
        self.definition = definition
        self.checksum = checksum
        self.status = status
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, version, description, definition, checksum, status, approvals
        case createdAt = "created_at"
        case createdBy = "created_by"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try c.decode(String.self, forKey: .id),
            name: try c.decode(String.self, forKey: .name),
            version: try c.decode(String.self, forKey: .version),
            description: try c.decodeIfPresent(String.self, forKey: .description),
            definition: try c.decode(JSONValue.self, forKey: .definition),
            checksum: try c.decode(String.self, forKey: .checksum),
            status: try c.decode(DefinitionStatus.self, forKey: .status),
            createdAt: try c.decode(String.self, forKey: .createdAt),
            createdBy: try c.decodeIfPresent(String.self, forKey: .createdBy),
            approvals: try c.decodeIfPresent([ApprovalInfo].self, forKey: .approvals) ?? []
        )
    }
}

/// The answer to starting a run (202, or 200 when an Idempotency-Key repeats an earlier start).
public struct RunAccepted: Codable, Sendable, Hashable {
    public var runId: String
    public var status: RunStatus
    public var workflowId: String
    public var workflowName: String
    public var workflowVersion: String
    public var createdAt: String

    public init(runId: String, status: RunStatus, workflowId: String, workflowName: String, workflowVersion: String, createdAt: String) {
        self.runId = runId
        self.status = status
        self.workflowId = workflowId
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.createdAt = createdAt
    }

    enum CodingKeys: String, CodingKey {
        case status
        case runId = "run_id"
        case workflowId = "workflow_id"
        case workflowName = "workflow_name"
        case workflowVersion = "workflow_version"
        case createdAt = "created_at"
    }
}

/// A run's status after a command (cancel, retry).
public struct RunStatusChange: Codable, Sendable, Hashable {
    public var runId: String
    public var status: RunStatus

    public init(runId: String, status: RunStatus) {
        self.runId = runId
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case status
        case runId = "run_id"
    }
}

/// The answer to a signal.
public struct SignalAccepted: Codable, Sendable, Hashable {
    public var runId: String
    public var signal: String
    public var status: RunStatus

    public init(runId: String, signal: String, status: RunStatus) {
        self.runId = runId
        self.signal = signal
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case signal, status
        case runId = "run_id"
    }
}

/// The answer to a rerun: the new run.
public struct RerunAccepted: Codable, Sendable, Hashable {
    public var runId: String
    public var rerunOf: String
    public var status: RunStatus

    public init(runId: String, rerunOf: String, status: RunStatus) {
        self.runId = runId
        self.rerunOf = rerunOf
        self.status = status
    }

    enum CodingKeys: String, CodingKey {
        case status
        case runId = "run_id"
        case rerunOf = "rerun_of"
    }
}

/// A signal a run keeps until a step waits for it.
public struct PendingSignalInfo: Codable, Sendable, Hashable {
    public var name: String
    public var receivedAt: String

    public init(name: String, receivedAt: String) {
        self.name = name
        self.receivedAt = receivedAt
    }

    enum CodingKeys: String, CodingKey {
        case name
        case receivedAt = "received_at"
    }
}

/// A run as lists show it.
public struct RunSummary: PageItem, Hashable {
    public static let pageKey = "executions"
    public var runId: String
    public var workflowId: String
    public var workflowName: String
    public var workflowVersion: String
    public var status: RunStatus
    @Nullable public var error: JSONValue?
    @Nullable public var parentRunId: String?
    public var parentStepId: String?
    public var itemIndex: Int?
    public var priority: Int
    public var compensated: Bool?
    public var deadLetter: Bool?
    public var pendingSignals: [PendingSignalInfo]?
    /// Who started the run (absent for runs the engine started: children and items).
    public var createdBy: String?
    public var createdAt: String
    @Nullable public var startedAt: String?
    @Nullable public var completedAt: String?

    public init(
        runId: String,
        workflowId: String,
        workflowName: String,
        workflowVersion: String,
        status: RunStatus,
        error: JSONValue?,
        parentRunId: String?,
        parentStepId: String?,
        itemIndex: Int?,
        priority: Int,
        compensated: Bool?,
        deadLetter: Bool?,
        pendingSignals: [PendingSignalInfo]?,
        createdBy: String? = nil,
        createdAt: String,
        startedAt: String?,
        completedAt: String?
    ) {
        self.createdBy = createdBy
        self.runId = runId
        self.workflowId = workflowId
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.status = status
        self.error = error
        self.parentRunId = parentRunId
        self.parentStepId = parentStepId
        self.itemIndex = itemIndex
        self.priority = priority
        self.compensated = compensated
        self.deadLetter = deadLetter
        self.pendingSignals = pendingSignals
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.completedAt = completedAt
    }

    /// True once the run can change no more.
    public var isFinished: Bool { status.isTerminal }

    enum CodingKeys: String, CodingKey {
        case status, error, priority, compensated
        case runId = "run_id"
        case workflowId = "workflow_id"
        case workflowName = "workflow_name"
        case workflowVersion = "workflow_version"
        case parentRunId = "parent_run_id"
        case parentStepId = "parent_step_id"
        case itemIndex = "item_index"
        case deadLetter = "dead_letter"
        case pendingSignals = "pending_signals"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case startedAt = "started_at"
        case completedAt = "completed_at"
    }
}

/// One step of a run.
public struct StepDetail: Codable, Sendable, Hashable {
    public var id: String
    public var status: StepStatus
    public var attempts: Int
    @Nullable public var output: JSONValue?
    @Nullable public var error: JSONValue?
    @Nullable public var startedAt: String?
    @Nullable public var completedAt: String?
    /// What a waiting step waits for (a signal, a child run, foreach progress); null otherwise.
    @Nullable public var state: JSONValue?

    public init(
        id: String,
        status: StepStatus,
        attempts: Int,
        output: JSONValue?,
        error: JSONValue?,
        startedAt: String?,
        completedAt: String?,
        state: JSONValue?
    ) {
        self.id = id
        self.status = status
        self.attempts = attempts
        self.output = output
        self.error = error
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case id, status, attempts, output, error, state
        case startedAt = "started_at"
        case completedAt = "completed_at"
    }
}

/// A run on its own: its summary, input, output and steps.
public struct RunDetail: Codable, Sendable, Hashable {
    public var summary: RunSummary
    public var input: JSONValue
    @Nullable public var output: JSONValue?
    public var updatedAt: String
    public var steps: [StepDetail]

    public init(summary: RunSummary, input: JSONValue, output: JSONValue?, updatedAt: String, steps: [StepDetail]) {
        self.summary = summary
        self.input = input
        self.output = output
        self.updatedAt = updatedAt
        self.steps = steps
    }

    public var runId: String { summary.runId }
    public var status: RunStatus { summary.status }
    public var error: JSONValue? { summary.error }
    public var compensated: Bool? { summary.compensated }
    public var isFinished: Bool { summary.isFinished }

    /// The step with this id.
    public func step(_ id: String) -> StepDetail? { steps.first { $0.id == id } }

    enum CodingKeys: String, CodingKey {
        case input, output, steps
        case updatedAt = "updated_at"
    }

    /// One flat object: the summary's fields and these.
    public init(from decoder: any Decoder) throws {
        summary = try RunSummary(from: decoder)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        input = try container.decode(JSONValue.self, forKey: .input)
        _output = try container.decode(Nullable<JSONValue>.self, forKey: .output)
        updatedAt = try container.decode(String.self, forKey: .updatedAt)
        steps = try container.decode([StepDetail].self, forKey: .steps)
    }

    public func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(input, forKey: .input)
        try container.encode(_output, forKey: .output)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(steps, forKey: .steps)
    }
}

/// A run's input, output and each step's output (the original system's `/data` route).
public struct RunOutputs: Codable, Sendable, Hashable {
    public var runId: String
    public var status: RunStatus
    public var input: JSONValue
    @Nullable public var output: JSONValue?
    public var steps: [String: JSONValue]

    public init(runId: String, status: RunStatus, input: JSONValue, output: JSONValue?, steps: [String: JSONValue]) {
        self.runId = runId
        self.status = status
        self.input = input
        self.output = output
        self.steps = steps
    }

    enum CodingKeys: String, CodingKey {
        case status, input, output, steps
        case runId = "run_id"
    }
}

/// One entry of a run's history.
public struct RunEvent: PageItem, Hashable {
    public static let pageKey = "events"
    public var seq: Int
    public var type: String
    @Nullable public var stepId: String?
    public var at: String
    public var data: JSONValue

    public init(seq: Int, type: String, stepId: String?, at: String, data: JSONValue) {
        self.seq = seq
        self.type = type
        self.stepId = stepId
        self.at = at
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case seq, type, at, data
        case stepId = "step_id"
    }
}

/// A failed top-level run waiting for an operator (retry, rerun or dismiss).
public struct DeadLetter: PageItem, Hashable {
    public static let pageKey = "dead_letters"
    public var runId: String
    public var workflowId: String
    public var workflowName: String
    public var workflowVersion: String
    @Nullable public var failedStep: String?
    @Nullable public var error: JSONValue?
    @Nullable public var failedAt: String?
    @Nullable public var compensated: Bool?

    public init(
        runId: String,
        workflowId: String,
        workflowName: String,
        workflowVersion: String,
        failedStep: String?,
        error: JSONValue?,
        failedAt: String?,
        compensated: Bool?
    ) {
        self.runId = runId
        self.workflowId = workflowId
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.failedStep = failedStep
        self.error = error
        self.failedAt = failedAt
        self.compensated = compensated
    }

    enum CodingKeys: String, CodingKey {
        case error, compensated
        case runId = "run_id"
        case workflowId = "workflow_id"
        case workflowName = "workflow_name"
        case workflowVersion = "workflow_version"
        case failedStep = "failed_step"
        case failedAt = "failed_at"
    }
}
