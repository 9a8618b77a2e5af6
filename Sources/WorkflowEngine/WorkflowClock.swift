import Foundation
import Synchronization

/// The engine's source of time. Engine code never calls `Date()` itself, so tests can control time.
///
/// Every instant the engine writes (a delay's end, a retry's backoff, a run's deadline, a lease's expiry, a schedule's
/// fire) is read from this clock, and every wait for one is recomputed from it. Only the step timeout watcher measures
/// on the monotonic clock: it bounds how long an execution really runs.
public protocol WorkflowClock: Sendable {
    func now() -> Date

    /// Asks the clock to call `action` whenever time jumps forward on its own (a test clock's `advance`), so that
    /// whoever waits for an instant can look again at once. Wall-clock time never jumps: the default does nothing.
    func onAdvance(_ action: @escaping @Sendable () -> Void)
}

extension WorkflowClock {
    public func onAdvance(_ action: @escaping @Sendable () -> Void) {}
}

/// Wall-clock time.
public struct SystemClock: WorkflowClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// Time that moves only when told to: tests advance it past a delay, a backoff or a deadline and wait for the outcome
/// instead of sleeping through it.
///
/// Instants are stored to the millisecond, and the same instant reached by two sums of floating-point seconds may
/// differ in its last bit: advance *past* a due time by a millisecond, as real time would, not exactly onto it.
///
/// Advance it while nothing executes: leases are measured on it too, so a jump past a lease's expiry while a step runs
/// lets the claimer take that step over, as it would from a node that stopped renewing.
public final class ManualClock: WorkflowClock {
    private let state: Mutex<(now: Date, observers: [@Sendable () -> Void])>

    /// Starts at `now`, or at the current time rounded to a whole millisecond: the drivers keep instants to the
    /// millisecond (SQLite) or microsecond (PostgreSQL), and a clock that starts between two milliseconds can stand a
    /// fraction of one short of a due time that was rounded up, for ever.
    public init(now: Date? = nil) {
        let start = now ?? Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded() / 1000)
        state = Mutex((start, []))
    }

    public func now() -> Date { state.withLock { $0.now } }

    public func onAdvance(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.observers.append(action) }
    }

    /// Moves time forward by `seconds` and wakes whoever waits for an instant.
    public func advance(by seconds: TimeInterval) {
        precondition(seconds >= 0, "a clock does not go back")
        let observers = state.withLock { state in
            state.now = state.now.addingTimeInterval(seconds)
            return state.observers
        }
        for observer in observers { observer() }
    }
}
