import Foundation
import Synchronization

/// Bounds how long a database operation may take, even when the driver never answers.
///
/// PostgresNIO 1.33 can leave a query waiting for ever when the server closes the connection under it (a restart
/// with `pg_ctl -m fast` does, mid-transaction): the query is written to a closed channel whose promise nobody
/// completes, and cancelling the waiting task does not reach it. A structured child task could not be left behind,
/// so each operation runs in an unstructured task that the caller stops waiting for at its deadline; the task is
/// cancelled and, if it ever finishes, its result is dropped. Its connection is not lost: the pool frees the slot of a
/// connection that closed while leased.
///
/// One watchdog loop checks every deadline (four times a second) instead of a timer per operation: a cancelled
/// sleep keeps its timer until its deadline, which would hold thousands of timers at a few thousand calls a second.
final class OperationDeadlines: Sendable {
    private struct Pending {
        var deadline: ContinuousClock.Instant
        var expire: @Sendable () -> Void
    }

    private let pending = Mutex<(next: Int, byID: [Int: Pending])>((0, [:]))
    private let interval: Duration

    init(interval: Duration = .milliseconds(250)) {
        self.interval = interval
    }

    /// Operations waiting for their result right now.
    var inFlight: Int { pending.withLock { $0.byID.count } }

    /// Expires overdue operations until the task is cancelled.
    func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let now = ContinuousClock.now
            let overdue = pending.withLock { state -> [@Sendable () -> Void] in
                let ids = state.byID.filter { $0.value.deadline <= now }.map(\.key)
                return ids.compactMap { state.byID.removeValue(forKey: $0)?.expire }
            }
            for expire in overdue { expire() }
        }
    }

    /// Runs `body`, or throws `timeoutError()` once `timeout` has passed without an answer.
    func run<T: Sendable>(
        within timeout: Duration,
        timeoutError: @escaping @Sendable () -> any Error,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = Outcome<T>()
        let task = Mutex<Task<Void, Never>?>(nil)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                outcome.set(continuation)
                let id = pending.withLock { state in
                    state.next &+= 1
                    let id = state.next
                    state.byID[id] = Pending(deadline: .now + timeout) {
                        // Answer first: the cancelled operation would otherwise race to report its cancellation.
                        outcome.resume(with: .failure(timeoutError()))
                        task.withLock { $0?.cancel() }
                    }
                    return id
                }
                let handle = Task {
                    let result: Result<T, any Error>
                    do { result = .success(try await body()) } catch { result = .failure(error) }
                    _ = self.pending.withLock { $0.byID.removeValue(forKey: id) }
                    outcome.resume(with: result)
                }
                task.withLock { $0 = handle }
            }
        } onCancel: {
            task.withLock { $0?.cancel() }
            outcome.resume(with: .failure(CancellationError()))
        }
    }

    /// The continuation of one operation, resumed exactly once by whichever comes first: its answer, its deadline or
    /// the caller's cancellation (which can come before the continuation exists).
    private final class Outcome<T: Sendable>: Sendable {
        private enum State {
            case waiting
            case suspended(CheckedContinuation<T, any Error>)
            case decided(Result<T, any Error>)
            case resumed
        }
        private let state = Mutex(State.waiting)

        func set(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { s -> Result<T, any Error>? in
                if case .decided(let result) = s {
                    s = .resumed
                    return result
                }
                s = .suspended(continuation)
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        func resume(with result: Result<T, any Error>) {
            let continuation = state.withLock { s -> CheckedContinuation<T, any Error>? in
                switch s {
                case .waiting:
                    s = .decided(result)
                    return nil
                case .suspended(let continuation):
                    s = .resumed
                    return continuation
                case .decided, .resumed:
                    return nil
                }
            }
            continuation?.resume(with: result)
        }
    }
}
