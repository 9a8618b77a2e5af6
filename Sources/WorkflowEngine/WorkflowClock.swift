import Foundation

/// The engine's source of time. Engine code never calls `Date()` itself, so tests can control time.
public protocol WorkflowClock: Sendable {
    func now() -> Date
}

/// Wall-clock time.
public struct SystemClock: WorkflowClock {
    public init() {}
    public func now() -> Date { Date() }
}
