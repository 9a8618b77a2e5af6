import WorkflowPrimitive

/// A request to start a run (`POST /api/v1/execute`, `POST /api/v1/workflows/{id}/execute` and the original system's
/// `/api/workflows/run`).
///
/// Parsed from the body's fields (`parse`) rather than decoded, so that every problem is reported at once with its
/// JSON pointer, and unknown fields are refused rather than ignored.
public struct ExecuteRequest: Sendable, Hashable {
    /// The workflow by id or name; nil when the path names it.
    public var workflow: String?
    /// A version of a workflow named by name (the highest active one when nil).
    public var version: String?
    public var input: JSONValue
    /// From -1000 to 1000; higher runs first.
    public var priority: Int

    public static let priorityRange = -1000...1000
    static let fields: Set<String> = ["workflow_id", "workflow_name", "version", "input", "input_data", "priority"]

    public init(workflow: String? = nil, version: String? = nil, input: JSONValue = [:], priority: Int = 0) {
        self.workflow = workflow
        self.version = version
        self.input = input
        self.priority = priority
    }

    /// The body a client sends.
    public var body: JSONValue {
        var fields: [String: JSONValue] = ["input": input]
        if let workflow { fields["workflow_id"] = .string(workflow) }
        if let version { fields["version"] = .string(version) }
        if priority != 0 { fields["priority"] = .number(Double(priority)) }
        return .object(fields)
    }

    /// Reads a body; `pathNamesWorkflow` when the path already names the workflow.
    /// - Throws: `invalid_request` with every problem found.
    public static func parse(_ fields: [String: JSONValue], pathNamesWorkflow: Bool) throws(WorkflowError) -> ExecuteRequest {
        var issues: [ValidationIssue] = []
        func issue(_ key: String, _ message: String) { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message)) }
        for key in fields.keys.sorted() where !Self.fields.contains(key) { issue(key, "unknown field '\(key)'") }
        func string(_ key: String) -> String? {
            guard let value = fields[key], !value.isNull else { return nil }
            if let s = value.stringValue { return s }
            issue(key, "must be a string")
            return nil
        }
        var request = ExecuteRequest(version: string("version"))
        if !pathNamesWorkflow {
            request.workflow = string("workflow_id") ?? string("workflow_name")
            if request.workflow == nil, issues.isEmpty { issue("workflow_id", "workflow_id or workflow_name is required") }
        }
        if fields["input"] != nil, fields["input_data"] != nil { issue("input_data", "give either input or input_data, not both") }
        let input = fields["input"] ?? fields["input_data"] ?? .object([:])
        if !input.isNull, input.objectValue == nil {
            issue(fields["input"] != nil ? "input" : "input_data", "must be an object, got \(input.typeName)")
        }
        request.input = input.isNull ? .object([:]) : input
        if let p = fields["priority"] {
            if let n = p.integer(in: priorityRange) {
                request.priority = n
            } else {
                issue("priority", "must be an integer between \(priorityRange.lowerBound) and \(priorityRange.upperBound)")
            }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return request
    }
}

/// A request to rerun a run, optionally with a new input (`POST /api/v1/executions/{id}/rerun`).
public struct RerunRequest: Sendable, Hashable {
    public var input: JSONValue?

    public init(input: JSONValue? = nil) { self.input = input }

    public var body: JSONValue { input.map { ["input": $0] } ?? .object([:]) }

    /// - Throws: `invalid_request` for an unknown field or an input that is not an object.
    public static func parse(_ fields: [String: JSONValue]) throws(WorkflowError) -> RerunRequest {
        var issues: [ValidationIssue] = []
        for key in fields.keys.sorted() where key != "input" {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key)'; expected input"))
        }
        if let input = fields["input"], input.objectValue == nil {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending("input"), message: "must be an object, got \(input.typeName)"))
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return RerunRequest(input: fields["input"])
    }
}
