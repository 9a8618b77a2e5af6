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

    public init(timeoutMs: Int? = nil, steps: [StepDefinition], output: JSONValue? = nil) {
        self.timeoutMs = timeoutMs
        self.steps = steps
        self.output = output
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

    public init(
        id: String, type: StepType, description: String? = nil, dependsOn: [String] = [], when: String? = nil,
        config: JSONValue = .object([:]), retry: RetryPolicy = .none, timeoutMs: Int? = nil
    ) {
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

    /// The config fields each type accepts, and which are required. `nil` means any object is accepted.
    var configFields: (allowed: Set<String>, required: Set<String>)? {
        switch self {
        case .echo: nil
        case .noop: ([], [])
        case .transform: (["output"], ["output"])
        case .delay: (["duration_ms"], ["duration_ms"])
        case .httpRequest: (["url", "method", "headers", "body", "timeout_ms"], ["url"])
        case .fail: (["message", "retriable"], [])
        }
    }
}
