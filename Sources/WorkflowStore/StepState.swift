import Foundation
import WorkflowPrimitive

/// What an unfinished step keeps between transitions, by kind. Drivers store it as JSON (`json`, `init(json:)`); the
/// JSON keys are those earlier versions wrote, so stored runs read the same.
public enum StepState: Sendable, Hashable {
    /// A `wait_for_signal` step waits for the signal `name`.
    case awaitingSignal(name: String)
    /// A `sub_workflow` step waits for its child run.
    case awaitingChild(runID: String)
    /// A `foreach` step's progress through its items.
    case foreach(ForeachProgress)
    /// An executor's own state while its step is suspended (a `delay`'s wake-up time), opaque to the engine.
    case suspended(JSONValue)
    /// An `approval` step collects decisions.
    case awaitingApproval(ApprovalProgress)

    /// Whether the step waits for child runs (a cancelled run cancels them).
    public var awaitsChildren: Bool {
        switch self {
        case .awaitingChild, .foreach: true
        case .awaitingSignal, .suspended, .awaitingApproval: false
        }
    }

    /// The state an executor sees: its own, while suspended.
    public var executorState: JSONValue? {
        if case .suspended(let state) = self { return state }
        return nil
    }

    /// The name of the signal the step waits for.
    public var signalName: String? {
        if case .awaitingSignal(let name) = self { return name }
        return nil
    }

    /// The stored form.
    public var json: JSONValue {
        switch self {
        case .awaitingSignal(let name): ["signal": .string(name)]
        case .awaitingChild(let id): ["child_run_id": .string(id), "awaits_children": true]
        case .foreach(let p):
            .object(
                [
                    "base": .string(p.base), "total": .number(Double(p.total)), "next": .number(Double(p.next)),
                    "active": .number(Double(p.active)), "done": .number(Double(p.done)), "failed": .number(Double(p.failed)),
                    "continue_on_error": .bool(p.continueOnError), "awaits_children": true,
                ].merging(p.phase == .collect ? ["phase": "collect"] : [:]) { a, _ in a }
            )
        case .suspended(let state): state
        case .awaitingApproval(let p): ["approval": p.json]
        }
    }

    /// The approval an `approval` step is collecting.
    public var approval: ApprovalProgress? {
        if case .awaitingApproval(let p) = self { return p }
        return nil
    }

    /// What a waiting step waits for, as the API shows it (a signal, a child run, foreach progress), without the
    /// engine's internals.
    public var publicJSON: JSONValue {
        guard case .object(var fields) = json else { return json }
        fields["awaits_children"] = nil
        fields["base"] = nil
        return .object(fields)
    }

    /// Reads the stored form; nil for none.
    public init?(json: JSONValue?) {
        guard let json, !json.isNull else { return nil }
        let fields = json.objectValue ?? [:]
        func int(_ key: String) -> Int? { fields[key]?.numberValue.map { Int($0) } }
        if fields.count == 1, let approval = fields["approval"].flatMap(ApprovalProgress.init(json:)) {
            self = .awaitingApproval(approval)
        } else if fields.count == 1, let name = fields["signal"]?.stringValue {
            self = .awaitingSignal(name: name)
        } else if let id = fields["child_run_id"]?.stringValue {
            self = .awaitingChild(runID: id)
        } else if let base = fields["base"]?.stringValue, let total = int("total") {
            self = .foreach(
                ForeachProgress(
                    base: base,
                    total: total,
                    next: int("next") ?? 0,
                    active: int("active") ?? 0,
                    done: int("done") ?? 0,
                    failed: int("failed") ?? 0,
                    continueOnError: fields["continue_on_error"]?.boolValue ?? false,
                    phase: fields["phase"]?.stringValue == "collect" ? .collect : .items
                )
            )
        } else {
            self = .suspended(json)
        }
    }
}

/// A `foreach` step's progress: items are released `next` at a time up to its concurrency, and the step runs once more
/// (`collect`) after the last item finished.
public struct ForeachProgress: Sendable, Hashable {
    public enum Phase: Sendable, Hashable {
        /// Items are running.
        case items
        /// Every item has finished; the step collects their results.
        case collect
    }

    /// The id items derive theirs from (`RecordID.item(base:index:)`).
    public var base: String
    public var total: Int
    /// The index of the next item to release.
    public var next: Int
    public var active: Int
    public var done: Int
    public var failed: Int
    public var continueOnError: Bool
    public var phase: Phase

    public init(
        base: String,
        total: Int,
        next: Int,
        active: Int,
        done: Int = 0,
        failed: Int = 0,
        continueOnError: Bool,
        phase: Phase = .items
    ) {
        self.base = base
        self.total = total
        self.next = next
        self.active = active
        self.done = done
        self.failed = failed
        self.continueOnError = continueOnError
        self.phase = phase
    }
}

/// What an `approval` step asks for and the approvals it has so far.
public struct ApprovalProgress: Sendable, Hashable {
    public var required: Int
    /// The roles a decider needs one of.
    public var roles: [String]
    /// Whether the author of the run's definition version may not decide either (the initiator never may).
    public var excludeAuthor: Bool
    public var approvals: [DefinitionApproval]
    public var message: String?
    public var deadline: Date?

    public init(required: Int, roles: [String], excludeAuthor: Bool, approvals: [DefinitionApproval] = [], message: String?, deadline: Date?) {
        self.required = required
        self.roles = roles
        self.excludeAuthor = excludeAuthor
        self.approvals = approvals
        self.message = message
        self.deadline = deadline
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "required": .number(Double(required)), "roles": .array(roles.map(JSONValue.string)), "exclude_author": .bool(excludeAuthor),
            "approvals": DefinitionApproval.encode(approvals) ?? .array([]),
        ]
        fields["message"] = message.map(JSONValue.string)
        fields["deadline_ms"] = deadline.map { .number(Double(AuditChain.milliseconds($0))) }
        return .object(fields)
    }

    public init?(json: JSONValue) {
        guard let f = json.objectValue, let required = f["required"]?.numberValue else { return nil }
        self.init(
            required: Int(required),
            roles: f["roles"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            excludeAuthor: f["exclude_author"]?.boolValue ?? false,
            approvals: DefinitionApproval.decode(f["approvals"]),
            message: f["message"]?.stringValue,
            deadline: f["deadline_ms"]?.numberValue.map { Date(timeIntervalSince1970: $0 / 1000) }
        )
    }
}
