/// A workflow definition as registered: a name, a semantic version and the spec of its steps.
///
/// Definitions are immutable once registered; `(name, version)` identifies one per tenant.
public struct WorkflowDefinition: Sendable, Hashable {
    public var name: String
    public var version: SemanticVersion
    public var description: String?
    public var spec: WorkflowSpec

    public init(name: String, version: SemanticVersion, description: String? = nil, spec: WorkflowSpec) {
        self.name = name
        self.version = version
        self.description = description
        self.spec = spec
    }
}

/// The executable part of a definition (the `definition` object of the registered document).
public struct WorkflowSpec: Sendable, Hashable {
    /// Fails the run when it has not finished this long after it started.
    public var timeoutMs: Int?
    public var steps: [StepDefinition]
    /// The run's output template, rendered when every step has finished; `nil` means the outputs of the sink steps.
    public var output: JSONValue?
    /// A step run once when the run fails, after its compensations (its id is `on_failure`).
    public var onFailure: StepDefinition?

    public init(timeoutMs: Int? = nil, steps: [StepDefinition], output: JSONValue? = nil, onFailure: StepDefinition? = nil) {
        self.timeoutMs = timeoutMs
        self.steps = steps
        self.output = output
        self.onFailure = onFailure
    }
}

/// One step of a workflow.
public struct StepDefinition: Sendable, Hashable {
    public var id: String
    public var type: StepType
    public var description: String?
    public var dependsOn: [String]
    /// An expression; when false the step is SKIPPED.
    public var when: String?
    public var config: JSONValue
    public var retry: RetryPolicy
    /// Each attempt fails (retriably) when it runs longer than this.
    public var timeoutMs: Int?
    /// When the step fails for good, it stays FAILED but its dependents still run.
    public var continueOnError: Bool
    /// The step that undoes this one when the run fails after it succeeded (its id is `<id>.compensate`).
    public var compensate: StepDefinitionBox?
    /// The nested steps of a `foreach`, run once per item.
    public var body: [StepDefinition]?

    public init(
        id: String,
        type: StepType,
        description: String? = nil,
        dependsOn: [String] = [],
        when: String? = nil,
        config: JSONValue = .object([:]),
        retry: RetryPolicy = .none,
        timeoutMs: Int? = nil,
        continueOnError: Bool = false,
        compensate: StepDefinition? = nil,
        body: [StepDefinition]? = nil
    ) {
        self.continueOnError = continueOnError
        self.compensate = compensate.map(StepDefinitionBox.init)
        self.body = body
        self.id = id
        self.type = type
        self.description = description
        self.dependsOn = dependsOn
        self.when = when
        self.config = config
        self.retry = retry
        self.timeoutMs = timeoutMs
    }
}

/// The kinds of step the engine can execute.
public enum StepType: String, Sendable, Hashable, CaseIterable {
    case echo
    case noop
    case transform
    case delay
    case httpRequest = "http_request"
    case fail
    case `switch`
    case foreach
    case subWorkflow = "sub_workflow"
    case waitForSignal = "wait_for_signal"
    /// Four-eyes decisions: waits for `approvers_required` distinct people (never the run's initiator) to approve,
    /// or for one to reject.
    case approval
    /// Renders a message from a template (Mustache) and sends it through a channel: `webhook` or `email`.
    case notify

    /// Types the engine carries out itself (in the run's transitions), not through a plug-in executor.
    public var isEngineManaged: Bool {
        switch self {
        case .switch, .foreach, .subWorkflow, .waitForSignal, .approval: true
        default: false
        }
    }

    /// The config fields each type accepts, and which are required. `nil` means any object is accepted.
    var configFields: (allowed: Set<String>, required: Set<String>)? {
        switch self {
        case .echo: nil
        case .noop: ([], [])
        case .transform: (["output"], ["output"])
        case .delay: (["duration_ms"], ["duration_ms"])
        case .httpRequest: (["url", "method", "headers", "body", "timeout_ms"], ["url"])
        case .fail: (["message", "retriable"], [])
        case .switch: (["cases", "default"], ["cases"])
        case .foreach: (["items", "max_concurrency", "continue_on_error", "steps"], ["items", "steps"])
        case .subWorkflow: (["workflow", "version", "input"], ["workflow"])
        case .waitForSignal: (["signal", "timeout_ms", "on_timeout"], ["signal"])
        case .approval: (["approvers_required", "allowed_roles", "exclude_author", "timeout_ms", "on_timeout", "message"], [])
        case .notify: (["channel", "template", "subject", "body", "data", "url", "headers", "to", "timeout_ms"], ["channel"])
        }
    }
}

/// A step definition held by reference, so a step can contain one (its compensation).
public final class StepDefinitionBox: Sendable, Hashable {
    public let step: StepDefinition

    public init(_ step: StepDefinition) { self.step = step }

    public static func == (a: StepDefinitionBox, b: StepDefinitionBox) -> Bool { a.step == b.step }
    public func hash(into hasher: inout Hasher) { hasher.combine(step) }
}
