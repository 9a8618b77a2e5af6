/// The bounds that keep hostile or careless input from exhausting a node: sizes, depths, counts and durations.
///
/// Every limit here has a default that serious workflows stay well inside, is checked where the value first enters
/// (registration, a start, a rendered config, a step's result) and fails that one request, step or run with a stable
/// code, never the process. docs/limits.md lists each with what happens when it is exceeded; `uwf serve` takes the
/// operational ones as flags.
public struct WorkflowLimits: Sendable, Hashable {
    /// Largest stored definition (canonical JSON), in bytes (422 `definition_too_large`).
    public var maxDefinitionBytes: Int = 1 << 20
    /// Deepest nesting of a definition document (422 `invalid_definition`).
    public var maxDefinitionDepth: Int = 64
    /// Most YAML nodes a document may expand to, aliases included (422 `malformed_document`): a few hundred bytes of
    /// nested aliases would otherwise expand to gigabytes.
    public var maxDocumentNodes: Int = 100_000
    /// Largest run input (canonical JSON), in bytes (413 `input_too_large`).
    public var maxInputBytes: Int = 1 << 20
    /// Largest output of one step, or of a run, in bytes (the step fails with `output_too_large`).
    public var maxOutputBytes: Int = 1 << 20
    /// Deepest nesting of a step's or run's output (the step fails with `output_too_deep`); below the JSON
    /// reader's 512, so that whatever is stored can always be read back.
    public var maxOutputDepth: Int = 128
    /// Longest `duration_ms` of a delay, in milliseconds (30 days by default).
    public var maxDelayMs: Int = 30 * 24 * 3_600_000
    /// Longest `timeout_ms` of a run, a step, a signal wait or an HTTP call, in milliseconds (30 days by default).
    public var maxTimeoutMs: Int = 30 * 24 * 3_600_000
    /// Longest retry interval (`initial_interval_ms`, `max_interval_ms`), in milliseconds (1 day by default).
    public var maxRetryIntervalMs: Int = 24 * 3_600_000
    /// Most runs one run tree (a top-level run with its sub_workflow and foreach descendants) may create
    /// (the step that would exceed it fails with `run_tree_too_large`).
    public var maxRunsPerTree: Int = 200_000

    public init() {}

    public static let `default` = WorkflowLimits()

    /// The widest limits a value can be held to without risking arithmetic overflow anywhere (durations up to
    /// 2^42 ms, about 139 years): used to re-read what was accepted under limits that may since have been lowered.
    public static let lenient: WorkflowLimits = {
        var limits = WorkflowLimits()
        limits.maxDelayMs = 1 << 42
        limits.maxTimeoutMs = 1 << 42
        limits.maxRetryIntervalMs = 1 << 42
        limits.maxDefinitionDepth = 256
        limits.maxDefinitionBytes = .max
        return limits
    }()

    /// The limits written as `name: value` for logs and `uwf serve --help`.
    public var summary: String {
        "max_definition_bytes=\(maxDefinitionBytes) max_input_bytes=\(maxInputBytes) "
            + "max_output_bytes=\(maxOutputBytes) max_delay_ms=\(maxDelayMs) max_timeout_ms=\(maxTimeoutMs) "
            + "max_runs_per_tree=\(maxRunsPerTree)"
    }
}

extension JSONValue {
    /// The size of the canonical encoding, counted without building it; stops counting once past `limit`.
    /// Returns nil when the value is larger than `limit` bytes or nested deeper than `maxDepth`.
    public func boundedSize(limit: Int, maxDepth: Int) -> Int? {
        var total = 0
        return Self.measure(self, depth: 1, total: &total, limit: limit, maxDepth: maxDepth) ? total : nil
    }

    /// True when the value nests deeper than `maxDepth` (checked without recursion past the limit).
    public func nests(deeperThan maxDepth: Int) -> Bool {
        var total = 0
        return !Self.measure(self, depth: 1, total: &total, limit: .max, maxDepth: maxDepth)
    }

    private static func measure(_ value: JSONValue, depth: Int, total: inout Int, limit: Int, maxDepth: Int) -> Bool {
        guard depth <= maxDepth else { return false }
        switch value {
        case .null: total += 4
        case .bool(let b): total += b ? 4 : 5
        case .number: total += 8  // an estimate: only sizes near the limit depend on it
        case .string(let s): total += s.utf8.count + 2
        case .array(let items):
            total += 2 + items.count
            for item in items where !measure(item, depth: depth + 1, total: &total, limit: limit, maxDepth: maxDepth) { return false }
        case .object(let fields):
            total += 2 + fields.count * 2
            for (key, field) in fields {
                total += key.utf8.count + 2
                if !measure(field, depth: depth + 1, total: &total, limit: limit, maxDepth: maxDepth) { return false }
            }
        }
        return total <= limit
    }
}

extension JSONValue {
    /// The value as an `Int` when it is an integral number inside `range`; nil otherwise (never traps).
    public func integer(in range: ClosedRange<Int>) -> Int? {
        guard case .number(let n) = self, n.rounded() == n, n >= Double(range.lowerBound), n <= Double(range.upperBound),
            let i = Int(exactly: n)
        else { return nil }
        return i
    }
}

extension StepType {
    /// The problems of a step's config as rendered at run time (field name, message), or of its constant fields at
    /// registration: one rule for both, so a template from the run input cannot pass a value the definition could not.
    public func renderedConfigProblems(_ config: JSONValue, limits: WorkflowLimits) -> [(field: String, message: String)] {
        var problems: [(String, String)] = []
        func milliseconds(_ field: String, minimum: Int, maximum: Int) {
            guard let value = config[field], !value.isNull else { return }
            if value.integer(in: minimum...maximum) == nil {
                problems.append((field, "must be an integer number of milliseconds from \(minimum) to \(maximum)"))
            }
        }
        switch self {
        case .delay: milliseconds("duration_ms", minimum: 0, maximum: limits.maxDelayMs)
        case .httpRequest: milliseconds("timeout_ms", minimum: 1, maximum: limits.maxTimeoutMs)
        case .notify:
            milliseconds("timeout_ms", minimum: 1, maximum: 300_000)
            problems += NotifyConfig.problems(config)
        case .waitForSignal, .approval: milliseconds("timeout_ms", minimum: 1, maximum: limits.maxTimeoutMs)
        case .foreach:
            if let n = config["max_concurrency"], n.integer(in: 1...10_000) == nil {
                problems.append(("max_concurrency", "must be an integer from 1 to 10000"))
            }
        default: break
        }
        return problems
    }
}
