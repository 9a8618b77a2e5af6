import Synchronization

/// An unbounded in-memory FIFO that async consumers take batches from. Closing it wakes every waiting consumer.
final class WorkQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var waiters: [(id: Int, max: Int, continuation: CheckedContinuation<[Element]?, Never>)] = []
        var nextWaiterID = 0
        var closed = false

        var count: Int { items.count - head }

        mutating func take(_ max: Int) -> [Element] {
            let n = min(max, count)
            let batch = Array(items[head..<(head + n)])
            head += n
            if head > 1024, head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return batch
        }
    }

    private let state = Mutex(State())

    var count: Int { state.withLock { $0.count } }

    /// Appends elements; returns false (and drops them) once the queue is closed.
    @discardableResult
    func push(_ elements: [Element]) -> Bool {
        guard !elements.isEmpty else { return true }
        let wakeups: [(CheckedContinuation<[Element]?, Never>, [Element])]? = state.withLock { s in
            guard !s.closed else { return nil }
            s.items.append(contentsOf: elements)
            var out: [(CheckedContinuation<[Element]?, Never>, [Element])] = []
            while s.count > 0, !s.waiters.isEmpty {
                let w = s.waiters.removeFirst()
                out.append((w.continuation, s.take(w.max)))
            }
            return out
        }
        guard let wakeups else { return false }
        for (continuation, batch) in wakeups { continuation.resume(returning: batch) }
        return true
    }

    @discardableResult
    func push(_ element: Element) -> Bool { push([element]) }

    /// Refuses further elements but lets consumers take what is queued; `next` returns nil once it is empty.
    func finish() {
        let waiters = state.withLock { s in
            s.closed = true
            guard s.count == 0 else { return [CheckedContinuation<[Element]?, Never>]() }
            defer { s.waiters.removeAll() }
            return s.waiters.map(\.continuation)
        }
        for w in waiters { w.resume(returning: nil) }
    }

    /// Up to `max` elements, waiting for at least one; nil once the queue is closed and empty or the task is cancelled.
    func next(max: Int) async -> [Element]? {
        let id = state.withLock { s in
            s.nextWaiterID += 1
            return s.nextWaiterID
        }
        // Set by the cancellation handler when it runs before the waiter registered, so registration returns at once.
        let cancelledEarly = CancelFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<[Element]?, Never>) in
                let immediate: [Element]?? = state.withLock { s in
                    if cancelledEarly.isSet { return .some(nil) }
                    if s.count > 0 { return .some(s.take(max)) }
                    if s.closed { return .some(nil) }
                    s.waiters.append((id, max, continuation))
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<[Element]?, Never>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else {
                    // Not registered yet (or already served): make a later registration return at once.
                    cancelledEarly.set()
                    return nil
                }
                return s.waiters.remove(at: i).continuation
            }
            waiter?.resume(returning: nil)
        }
    }

    /// Refuses further elements, wakes waiting consumers, and returns the elements nobody took.
    @discardableResult
    func close() -> [Element] {
        let (waiters, left) = state.withLock { s in
            s.closed = true
            let w = s.waiters.map(\.continuation)
            s.waiters.removeAll()
            return (w, s.take(s.count))
        }
        for w in waiters { w.resume(returning: nil) }
        return left
    }
}

/// A flag raised once, read under the queue's lock.
private final class CancelFlag: Sendable {
    private let raised = Mutex(false)
    var isSet: Bool { raised.withLock { $0 } }
    func set() { raised.withLock { $0 = true } }
}

/// Wakes one sleeper early; a signal sent while nobody sleeps is kept until the next wait.
final class WakeSignal: Sendable {
    private let queue = WorkQueue<Void>()

    func signal() {
        if queue.count == 0 { queue.push(()) }
    }

    /// Returns when signalled or after `timeout`, whichever comes first.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await self.queue.next(max: .max) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    func close() { queue.close() }
}
