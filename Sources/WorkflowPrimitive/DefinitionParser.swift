/// Turns a registered document (already decoded from JSON or YAML) into a ``WorkflowDefinition``,
/// collecting every problem with its JSON pointer instead of stopping at the first.
struct DefinitionParser {
    private(set) var issues: [ValidationIssue] = []

    private static let documentFields: Set<String> = ["name", "version", "description", "definition"]
    private static let specFields: Set<String> = ["steps", "timeout_ms", "output", "description"]
    private static let stepFields: Set<String> = [
        "id", "name", "type", "description", "depends_on", "when", "config", "retry", "timeout_ms",
    ]
    private static let retryFields: Set<String> = [
        "max_attempts", "backoff", "initial_interval_ms", "max_interval_ms", "multiplier", "jitter",
    ]

    mutating func parseDocument(_ document: JSONValue) -> WorkflowDefinition? {
        let root = JSONPointer.root
        guard let fields = object(document, at: root) else { return nil }
        rejectUnknown(fields, allowed: Self.documentFields, at: root)

        let name = requiredString(fields, "name", at: root)
        if let name, !Self.isValidName(name) {
            issue(root.appending("name"), "must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
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
            name: name ?? "", version: version ?? SemanticVersion("0.0.0")!, description: description, spec: spec)
    }

    mutating func parseSpec(_ value: JSONValue, at pointer: JSONPointer) -> WorkflowSpec? {
        guard let fields = object(value, at: pointer) else { return nil }
        rejectUnknown(fields, allowed: Self.specFields, at: pointer)
        let timeout = optionalInt(fields, "timeout_ms", at: pointer, minimum: 1)
        var steps: [StepDefinition] = []
        switch fields["steps"] {
        case nil:
            issue(pointer.appending("steps"), "is required")
        case .array(let items)?:
            if items.isEmpty { issue(pointer.appending("steps"), "must contain at least one step") }
            for (i, item) in items.enumerated() {
                steps.append(parseStep(item, at: pointer.appending("steps").appending(i), index: i))
            }
        case let other?:
            issue(pointer.appending("steps"), "must be an array, got \(other.typeName)")
        }
        return WorkflowSpec(timeoutMs: timeout, steps: steps, output: fields["output"])
    }

    /// Always returns a step, so that step indices (and the pointers built from them) stay aligned; an invalid id or
    /// type is replaced by a placeholder that nothing can reference, and the problem is recorded.
    private mutating func parseStep(_ value: JSONValue, at pointer: JSONPointer, index: Int) -> StepDefinition {
        let placeholderID = "#\(index)"
        guard let fields = object(value, at: pointer) else { return StepDefinition(id: placeholderID, type: .noop) }
        rejectUnknown(fields, allowed: Self.stepFields, at: pointer)

        // `name` is the original system's word for `id`; accept either, not both with different values.
        var id: String?
        switch (fields["id"], fields["name"]) {
        case (nil, nil): issue(pointer.appending("id"), "is required")
        case (let v?, nil): id = string(v, at: pointer.appending("id"))
        case (nil, let v?): id = string(v, at: pointer.appending("name"))
        case (let a?, let b?):
            id = string(a, at: pointer.appending("id"))
            if a != b { issue(pointer.appending("name"), "is an alias of 'id' and must not differ from it") }
        }
        if let candidate = id, !Self.isValidStepID(candidate) {
            issue(pointer.appending(fields["id"] != nil ? "id" : "name"),
                  "must start with a letter or '_' and contain only letters, digits, '_' or '-'")
            id = nil
        }

        var type: StepType?
        if let text = requiredString(fields, "type", at: pointer) {
            type = StepType(rawValue: text)
            if type == nil {
                issue(pointer.appending("type"),
                      "unknown step type '\(text)'; known types: \(StepType.allCases.map(\.rawValue).joined(separator: ", "))")
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
        let timeout = optionalInt(fields, "timeout_ms", at: pointer, minimum: 1)
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

        return StepDefinition(
            id: id ?? placeholderID, type: type ?? .noop, description: description, dependsOn: dependsOn, when: when, config: config,
            retry: retry, timeoutMs: timeout)
    }

    /// Checks the config values that are not templates; templated values are checked when rendered.
    private mutating func checkConfig(_ type: StepType, _ config: [String: JSONValue], at pointer: JSONPointer) {
        func isTemplate(_ v: JSONValue) -> Bool { v.stringValue?.contains("${") ?? false }
        switch type {
        case .delay:
            if let d = config["duration_ms"], !isTemplate(d) {
                if d.numberValue.map({ $0 < 0 || $0.rounded() != $0 }) ?? true {
                    issue(pointer.appending("duration_ms"), "must be a non-negative integer number of milliseconds")
                }
            }
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
            if let t = config["timeout_ms"], !isTemplate(t), (t.numberValue ?? 0) < 1 {
                issue(pointer.appending("timeout_ms"), "must be a positive integer")
            }
        case .fail:
            if let m = config["message"], m.stringValue == nil { issue(pointer.appending("message"), "must be a string") }
            if let r = config["retriable"], r.boolValue == nil { issue(pointer.appending("retriable"), "must be a boolean") }
        case .echo, .noop, .transform:
            break
        }
    }

    private mutating func parseRetry(_ value: JSONValue, at pointer: JSONPointer) -> RetryPolicy? {
        guard let fields = object(value, at: pointer) else { return nil }
        rejectUnknown(fields, allowed: Self.retryFields, at: pointer)
        var policy = RetryPolicy(maxAttempts: 3)
        if let n = optionalInt(fields, "max_attempts", at: pointer, minimum: 1) {
            if n > 1000 { issue(pointer.appending("max_attempts"), "must be at most 1000") }
            policy.maxAttempts = n
        }
        if let text = optionalString(fields, "backoff", at: pointer) {
            if let b = RetryPolicy.Backoff(rawValue: text) { policy.backoff = b } else {
                issue(pointer.appending("backoff"), "must be 'fixed' or 'exponential', got '\(text)'")
            }
        }
        if let n = optionalInt(fields, "initial_interval_ms", at: pointer, minimum: 0) { policy.initialIntervalMs = n }
        if let n = optionalInt(fields, "max_interval_ms", at: pointer, minimum: 0) { policy.maxIntervalMs = n }
        if fields["max_interval_ms"] != nil, policy.maxIntervalMs < policy.initialIntervalMs {
            issue(pointer.appending("max_interval_ms"), "must not be less than initial_interval_ms")
        }
        if let m = fields["multiplier"] {
            if let x = m.numberValue, x >= 1 { policy.multiplier = x } else {
                issue(pointer.appending("multiplier"), "must be a number of at least 1")
            }
        }
        if let j = fields["jitter"] {
            if let b = j.boolValue { policy.jitter = b } else { issue(pointer.appending("jitter"), "must be a boolean") }
        }
        return policy
    }

    // MARK: helpers

    static func isValidName(_ s: String) -> Bool {
        guard (1...128).contains(s.count), let first = s.unicodeScalars.first,
            first.isASCIIAlnum
        else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCIIAlnum || $0 == "." || $0 == "_" || $0 == "-" }
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
        _ fields: [String: JSONValue], allowed: Set<String>, at pointer: JSONPointer, what: String = "field"
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

    private mutating func optionalInt(_ fields: [String: JSONValue], _ key: String, at pointer: JSONPointer, minimum: Int)
        -> Int?
    {
        guard let value = fields[key], !value.isNull else { return nil }
        guard case .number(let n) = value, n.rounded() == n, n >= Double(minimum), n < 1e15 else {
            issue(pointer.appending(key), "must be an integer of at least \(minimum)")
            return nil
        }
        return Int(n)
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIIAlnum: Bool {
        ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self)
    }
}
