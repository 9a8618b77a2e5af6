/// What a step record of a run stands for: a step of the DAG, the compensation of one, or the workflow's `on_failure`
/// step. Records keep the id as a string (`"debit"`, `"debit.compensate"`, `"on_failure"`); code asks this type rather
/// than matching strings, so the spelling lives here alone.
public enum StepRef: Hashable, Sendable, CustomStringConvertible {
    case step(String)
    case compensation(of: String)
    case onFailure

    static let compensationSuffix = ".compensate"
    static let onFailureID = "on_failure"

    /// Reads a step record's id. DAG step ids can contain neither a `.` nor be `on_failure` (the parser refuses both).
    public init(_ id: String) {
        if id == Self.onFailureID {
            self = .onFailure
        } else if id.hasSuffix(Self.compensationSuffix) {
            self = .compensation(of: String(id.dropLast(Self.compensationSuffix.count)))
        } else {
            self = .step(id)
        }
    }

    /// The id a step record carries.
    public var id: String {
        switch self {
        case .step(let id): id
        case .compensation(let of): of + Self.compensationSuffix
        case .onFailure: Self.onFailureID
        }
    }

    public var description: String { id }

    /// The DAG step whose effect this step is part of (a compensation belongs to the step it undoes), or `on_failure`.
    public var owner: String {
        switch self {
        case .step(let id), .compensation(of: let id): id
        case .onFailure: Self.onFailureID
        }
    }

    public var isCompensation: Bool {
        if case .compensation = self { return true }
        return false
    }

    public var isOnFailure: Bool { self == .onFailure }

    /// A step of the DAG (not a compensation, not `on_failure`).
    public var isDAGStep: Bool {
        if case .step = self { return true }
        return false
    }
}
