/// Turns a registered document (already decoded from JSON or YAML) into a ``WorkflowDefinition``,
/// collecting every problem with its JSON pointer instead of stopping at the first.
struct DefinitionParser {
    private(set) var issues: [ValidationIssue] = []
    let limits: WorkflowLimits

    init(limits: WorkflowLimits = .default) {
        self.limits = limits
    }

    private static let documentFields: Set<String> = ["name", "version", "description", "definition"]
    private static let specFields: Set<String> = ["steps", "timeout_ms", "output", "description", "on_failure"]
    private static let stepFields: Set<String> = [
        "id", "name", "type", "description", "depends_on", "when", "config", "retry", "timeout_ms", "continue_on_error",
        "compensate",
    ]
    /// The fields of a step that has no place in the DAG (a compensation, `on_failure`): it gets its id from its owner.
    private static let attachedStepFields: Set<String> = ["type", "description", "config", "retry", "timeout_ms"]
    private static let retryFields: Set<String> = [
        "max_attempts", "backoff", "initial_interval_ms", "max_interval_ms", "multiplier", "jitter",
    ]

    mutating func parseDocument(_ document: JSONValue) -> WorkflowDefinition? {
        let root = JSONPointer.root
        guard let fields = object(document, at: root) else { return nil }
        rejectUnknown(fields, allowed: Self.documentFields, at: root)

        let name = requiredString(fields, "name", at: root)
        if let name, !Self.isValidName(name) {
            issue(root.appending("name"), "must be 1-128 printable characters, without '/' or '\\' and not starting or ending with a space")
        }
        var version: SemanticVersion?
        if let text = requiredString(fields, "version", at: root) {
            version = SemanticVersion(text)
            if version == nil { issue(root.appending("version"), "must be a semantic version such as 1.0.0, got '\(text)'") }
        }
        let description = optionalString(fields, "description", at: root)
        var spec: WorkflowSpec?
        if let specValue = fields["definition"] {
            spec = parseSpec(specValue, at: root.appending("definition"))
        } else {
            issue(root.appending("definition"), "is required")
        }
        guard let spec else { return nil }
        // Returned even when fields were invalid, so the DAG checks can still report their problems too.
        return WorkflowDefinition(
            name: name ?? "",
            version: version ?? SemanticVersion("0.0.0")!,
            description: description,
            spec: spec
        )
    }

    mutating func parseSpec(_ value: JSONValue, at pointer: JSONPointer) -> WorkflowSpec? {
        guard let fields = object(value, at: pointer) else { return nil }
        rejectUnknown(fields, allowed: Self.specFields, at: pointer)
        let timeout = optionalInt(fields, "timeout_ms", at: pointer, minimum: 1, maximum: limits.maxTimeoutMs)
        let steps = parseSteps(fields["steps"], at: pointer.appending("steps"))
        var onFailure: StepDefinition?
        if let value = fields["on_failure"] {
            onFailure = parseStep(value, at: pointer.appending("on_failure"), index: 0, attachedID: StepRef.onFailure.id)
        }
        return WorkflowSpec(timeoutMs: timeout, steps: steps, output: fields["output"], onFailure: onFailure)
    }

    private mutating func parseSteps(_ value: JSONValue?, at pointer: JSONPointer) -> [StepDefinition] {
        var steps: [StepDefinition] = []
        switch value {
        case nil:
            issue(pointer, "is required")
        case .array(let items)?:
            if items.isEmpty { issue(pointer, "must contain at least one step") }
            for (i, item) in items.enumerated() {
                steps.append(parseStep(item, at: pointer.appending(i), index: i))
            }
        case let other?:
            issue(pointer, "must be an array, got \(other.typeName)")
        }
        return steps
    }

    /// Always returns a step, so that step indices (and the pointers built from them) stay aligned; an invalid id or
    /// type is replaced by a placeholder that nothing can reference, and the problem is recorded.
    /// With `attachedID`, parses a step that belongs to another (a compensation, `on_failure`): no id, no DAG fields.
    private mutating func parseStep(
        _ value: JSONValue,
        at pointer: JSONPointer,
        index: Int,
        attachedID: String? = nil
    )
        -> StepDefinition
    {
        let placeholderID = attachedID ?? "#\(index)"
        guard let fields = object(value, at: pointer) else { return StepDefinition(id: placeholderID, type: .noop) }
        rejectUnknown(fields, allowed: attachedID == nil ? Self.stepFields : Self.attachedStepFields, at: pointer)

        // `name` is the original system's word for `id`; accept either, not both with different values.
        var id: String?
        switch attachedID != nil ? (nil, nil) : (fields["id"], fields["name"]) {
        case (nil, nil) where attachedID != nil: id = attachedID
        case (nil, nil): issue(pointer.appending("id"), "is required")
        case (let v?, nil): id = string(v, at: pointer.appending("id"))
        case (nil, let v?): id = string(v, at: pointer.appending("name"))
        case (let a?, let b?):
            id = string(a, at: pointer.appending("id"))
            if a != b { issue(pointer.appending("name"), "is an alias of 'id' and must not differ from it") }
        }
        if attachedID == nil, id == StepRef.onFailure.id {
            issue(pointer.appending(fields["id"] != nil ? "id" : "name"), "'on_failure' is reserved for the workflow's on_failure step")
            id = nil
        }
        if attachedID == nil, let candidate = id, !Self.isValidStepID(candidate) {
            issue(
                pointer.appending(fields["id"] != nil ? "id" : "name"),
                "must start with a letter or '_' and contain only letters, digits, '_' or '-'"
            )
            id = nil
        }

        var type: StepType?
        if let text = requiredString(fields, "type", at: pointer) {
            type = StepType(rawValue: text)
            if type == nil {
                issue(
                    pointer.appending("type"),
                    "unknown step type '\(text)'; known types: \(StepType.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
        }

        var dependsOn: [String] = []
        if let deps = fields["depends_on"] {
            if case .array(let items) = deps {
                for (i, item) in items.enumerated() {
                    if let s = string(item, at: pointer.appending("depends_on").appending(i)) { dependsOn.append(s) }
                }
            } else if case .string(let single) = deps {
                dependsOn = [single]
            } else {
                issue(pointer.appending("depends_on"), "must be an array of step ids, got \(deps.typeName)")
            }
        }

        let when = optionalString(fields, "when", at: pointer)
        let description = optionalString(fields, "description", at: pointer)
        let timeout = optionalInt(fields, "timeout_ms", at: pointer, minimum: 1, maximum: limits.maxTimeoutMs)
        let config = fields["config"] ?? .object([:])
        if case .object(let configFields) = config {
            if let type, let rules = type.configFields {
                rejectUnknown(configFields, allowed: rules.allowed, at: pointer.appending("config"), what: "config field for \(type.rawValue)")
                for field in rules.required.sorted() where configFields[field] == nil {
                    issue(pointer.appending("config").appending(field), "is required for a \(type.rawValue) step")
                }
            }
            if let type { checkConfig(type, configFields, at: pointer.appending("config")) }
        } else {
            issue(pointer.appending("config"), "must be an object, got \(config.typeName)")
        }

        var retry = RetryPolicy.none
        if let retryValue = fields["retry"] { retry = parseRetry(retryValue, at: pointer.appending("retry")) ?? .none }

        var continueOnError = false
        if let value = fields["continue_on_error"] {
            if let b = value.boolValue { continueOnError = b } else { issue(pointer.appending("continue_on_error"), "must be a boolean") }
        }
        var compensate: StepDefinition?
        if let value = fields["compensate"] {
            compensate = parseStep(
                value,
                at: pointer.appending("compensate"),
                index: index,
                attachedID: StepRef.compensation(of: id ?? placeholderID).id
            )
        }
        var body: [StepDefinition]?
        if type == .foreach, case .object(let configFields) = config, let nested = configFields["steps"] {
            body = parseSteps(nested, at: pointer.appending("config").appending("steps"))
        }

        return StepDefinition(
            id: id ?? placeholderID,
            type: type ?? .noop,
            description: description,
            dependsOn: dependsOn,
            when: when,
            config: config,
            retry: retry,
            timeoutMs: timeout,
            continueOnError: continueOnError,
            compensate: compensate,
            body: body
        )
    }

    /// Checks the config values that are not templates; templated values are checked when rendered
    /// (``StepType/renderedConfigProblems(_:limits:)`` holds both to the same rules).
    private mutating func checkConfig(_ type: StepType, _ config: [String: JSONValue], at pointer: JSONPointer) {
        func isTemplate(_ v: JSONValue) -> Bool { v.stringValue?.contains("${") ?? false }
        var constant: [String: JSONValue] = [:]
        for (key, value) in config where !isTemplate(value) { constant[key] = value }
        for (field, message) in type.renderedConfigProblems(.object(constant), limits: limits) {
            issue(pointer.appending(field), message)
        }
        switch type {
        case .delay:
            break
        case .httpRequest:
            if let url = config["url"], !isTemplate(url) {
                if let s = url.stringValue {
                    if !(s.hasPrefix("http://") || s.hasPrefix("https://")) {
                        issue(pointer.appending("url"), "must be an http:// or https:// URL")
                    }
                } else {
                    issue(pointer.appending("url"), "must be a string, got \(url.typeName)")
                }
            }
            if let method = config["method"], !isTemplate(method) {
                let allowed = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
                if !(method.stringValue.map { allowed.contains($0.uppercased()) } ?? false) {
                    issue(pointer.appending("method"), "must be one of \(allowed.joined(separator: ", "))")
                }
            }
            if let headers = config["headers"] {
                if case .object(let h) = headers {
                    for (k, v) in h where v.stringValue == nil {
                        issue(pointer.appending("headers").appending(k), "must be a string, got \(v.typeName)")
                    }
                } else {
                    issue(pointer.appending("headers"), "must be an object of strings")
                }
            }
        case .fail:
            if let m = config["message"], m.stringValue == nil { issue(pointer.appending("message"), "must be a string") }
            if let r = config["retriable"], r.boolValue == nil { issue(pointer.appending("retriable"), "must be a boolean") }
        case .switch:
            func checkTargets(_ value: JSONValue?, at pointer: JSONPointer) {
                guard let value else { return }
                guard case .array(let items) = value, items.allSatisfy({ $0.stringValue != nil }) else {
                    issue(pointer, "must be an array of step ids")
                    return
                }
            }
            if let cases = config["cases"] {
                if case .array(let items) = cases, !items.isEmpty {
                    for (i, item) in items.enumerated() {
                        let at = pointer.appending("cases").appending(i)
                        guard case .object(let fields) = item else {
                            issue(at, "must be an object with 'when' and 'next'")
                            continue
                        }
                        rejectUnknown(fields, allowed: ["when", "next"], at: at)
                        if fields["when"]?.stringValue == nil { issue(at.appending("when"), "is required and must be an expression string") }
                        if fields["next"] == nil { issue(at.appending("next"), "is required") }
                        checkTargets(fields["next"], at: at.appending("next"))
                    }
                } else {
                    issue(pointer.appending("cases"), "must be a non-empty array of {\"when\", \"next\"}")
                }
            }
            checkTargets(config["default"], at: pointer.appending("default"))
        case .foreach:
            if let items = config["items"], !isTemplate(items), items.arrayValue == nil {
                issue(pointer.appending("items"), "must be an array or a template such as \"${input.items}\"")
            }
            if let c = config["continue_on_error"], c.boolValue == nil { issue(pointer.appending("continue_on_error"), "must be a boolean") }
        case .subWorkflow:
            if let w = config["workflow"], w.stringValue == nil { issue(pointer.appending("workflow"), "must be a workflow name or id") }
            if let v = config["version"], !isTemplate(v) {
                if v.stringValue.flatMap(SemanticVersion.init) == nil {
                    issue(pointer.appending("version"), "must be a semantic version such as 1.2.0")
                }
            }
            if let input = config["input"], !isTemplate(input), input.objectValue == nil {
                issue(pointer.appending("input"), "must be an object")
            }
        case .waitForSignal:
            if let name = config["signal"], !isTemplate(name) {
                if !(name.stringValue.map(SignalName.isValid) ?? false) {
                    issue(pointer.appending("signal"), "must be 1-128 characters of letters, digits, '.', '_' or '-'")
                }
            }
            if let o = config["on_timeout"], !(o.stringValue.map { ["fail", "continue"].contains($0) } ?? false) {
                issue(pointer.appending("on_timeout"), "must be 'fail' or 'continue'")
            }
        case .notify:
            for (field, message) in NotifyConfig.missing(.object(config)) { issue(pointer.appending(field), message) }
        case .approval:
            if let n = config["approvers_required"], !isTemplate(n), n.integer(in: 1...10) == nil {
                issue(pointer.appending("approvers_required"), "must be an integer from 1 to 10")
            }
            if let roles = config["allowed_roles"] {
                let names = roles.arrayValue?.compactMap(\.stringValue) ?? []
                if names.isEmpty || names.count != roles.arrayValue?.count || names.count > 10
                    || names.contains(where: { $0.isEmpty || $0.utf8.count > 32 })
                {
                    issue(pointer.appending("allowed_roles"), "must be an array of 1 to 10 role names")
                }
            }
            if let flag = config["exclude_author"], flag.boolValue == nil {
                issue(pointer.appending("exclude_author"), "must be true or false")
            }
            if let o = config["on_timeout"], !(o.stringValue.map { ["fail", "continue"].contains($0) } ?? false) {
                issue(pointer.appending("on_timeout"), "must be 'fail' or 'continue'")
            }
            if let m = config["message"], !isTemplate(m), (m.stringValue?.utf8.count ?? 1001) > 1000 {
                issue(pointer.appending("message"), "must be a string of at most 1000 bytes")
            }
        case .echo, .noop, .transform:
            break
        }
    }

    private mutating func parseRetry(_ value: JSONValue, at pointer: JSONPointer) -> RetryPolicy? {
        guard let fields = object(value, at: pointer) else { return nil }
        rejectUnknown(fields, allowed: Self.retryFields, at: pointer)
        var policy = RetryPolicy(maxAttempts: 3)
        if let n = optionalInt(fields, "max_attempts", at: pointer, minimum: 1, maximum: 1000) { policy.maxAttempts = n }
        if let text = optionalString(fields, "backoff", at: pointer) {
            if let b = RetryPolicy.Backoff(rawValue: text) {
                policy.backoff = b
            } else {
                issue(pointer.appending("backoff"), "must be 'fixed' or 'exponential', got '\(text)'")
            }
        }
        if let n = optionalInt(fields, "initial_interval_ms", at: pointer, minimum: 0, maximum: limits.maxRetryIntervalMs) {
            policy.initialIntervalMs = n
        }
        if let n = optionalInt(fields, "max_interval_ms", at: pointer, minimum: 0, maximum: limits.maxRetryIntervalMs) {
            policy.maxIntervalMs = n
        } else if fields["max_interval_ms"] == nil {
            // The default cap never shortens the interval the author asked for: an hour's initial wait is an hour.
            policy.maxIntervalMs = max(policy.maxIntervalMs, policy.initialIntervalMs)
        }
        if fields["max_interval_ms"] != nil, policy.maxIntervalMs < policy.initialIntervalMs {
            issue(pointer.appending("max_interval_ms"), "must not be less than initial_interval_ms")
        }
        if let m = fields["multiplier"] {
            if let x = m.numberValue, x >= 1, x <= 100 {
                policy.multiplier = x
            } else {
                issue(pointer.appending("multiplier"), "must be a number from 1 to 100")
            }
        }
        if let j = fields["jitter"] {
            if let b = j.boolValue { policy.jitter = b } else { issue(pointer.appending("jitter"), "must be a boolean") }
        }
        return policy
    }

    // MARK: helpers

    /// A workflow's name: 1-128 printable characters (spaces and any script included, as the original plan's
    /// "Test Workflow"), without `/` or `\` (proxies and ingresses decode `%2F` in paths, so such a name could not be
    /// addressed reliably) and without spaces at either end (they would vanish in forms and command lines).
    public static func isValidName(_ s: String) -> Bool {
        guard (1...128).contains(s.count), s.utf8.count <= 512, let first = s.unicodeScalars.first, let last = s.unicodeScalars.last,
            !first.properties.isWhitespace, !last.properties.isWhitespace
        else { return false }
        return s.unicodeScalars.allSatisfy { scalar in
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator: false
            default: scalar != "/" && scalar != "\\"
            }
        }
    }

    static func isValidStepID(_ s: String) -> Bool {
        guard (1...128).contains(s.count), let first = s.unicodeScalars.first,
            first == "_" || (first.isASCIIAlnum && !("0"..."9").contains(first))
        else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIIAlnum || $0 == "_" || $0 == "-" }
    }

    private mutating func issue(_ pointer: JSONPointer, _ message: String) {
        issues.append(ValidationIssue(pointer: pointer, message: message))
    }

    private mutating func object(_ value: JSONValue, at pointer: JSONPointer) -> [String: JSONValue]? {
        if case .object(let fields) = value { return fields }
        issue(pointer, "must be an object, got \(value.typeName)")
        return nil
    }

    private mutating func rejectUnknown(
        _ fields: [String: JSONValue],
        allowed: Set<String>,
        at pointer: JSONPointer,
        what: String = "field"
    ) {
        for key in fields.keys.sorted() where !allowed.contains(key) {
            let known = allowed.isEmpty ? "none are accepted" : "expected one of \(allowed.sorted().joined(separator: ", "))"
            issue(pointer.appending(key), "unknown \(what) '\(key)'; \(known)")
        }
    }

    private mutating func string(_ value: JSONValue, at pointer: JSONPointer) -> String? {
        if case .string(let s) = value { return s }
        issue(pointer, "must be a string, got \(value.typeName)")
        return nil
    }

    private mutating func requiredString(_ fields: [String: JSONValue], _ key: String, at pointer: JSONPointer) -> String? {
        guard let value = fields[key] else {
            issue(pointer.appending(key), "is required")
            return nil
        }
        return string(value, at: pointer.appending(key))
    }

    private mutating func optionalString(_ fields: [String: JSONValue], _ key: String, at pointer: JSONPointer) -> String? {
        guard let value = fields[key], !value.isNull else { return nil }
        return string(value, at: pointer.appending(key))
    }

    private mutating func optionalInt(
        _ fields: [String: JSONValue],
        _ key: String,
        at pointer: JSONPointer,
        minimum: Int,
        maximum: Int
    ) -> Int? {
        guard let value = fields[key], !value.isNull else { return nil }
        guard let n = value.integer(in: minimum...maximum) else {
            issue(pointer.appending(key), "must be an integer from \(minimum) to \(maximum)")
            return nil
        }
        return n
    }
}

/// The names signals may have (`wait_for_signal`'s `signal`, the last segment of the signals endpoint).
public enum SignalName {
    public static func isValid(_ s: String) -> Bool {
        guard (1...128).contains(s.utf8.count) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIIAlnum || $0 == "." || $0 == "_" || $0 == "-" }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIIAlnum: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
