import Synchronization
import WorkflowPrimitive

/// Parsed inputs of recently touched runs. A run's input never changes after it is created, so a transition can
/// reuse the parsed value instead of parsing the stored JSON again: a `foreach` over 10,000 items whose list is in
/// the run's input would otherwise parse that list once per finished item.
///
/// Only inputs of at least `minimumBytes` are kept (small ones parse faster than they hash), at most `capacity`
/// of them, the oldest evicted first.
public final class RunInputCache: Sendable {
    private struct State {
        var values: [String: JSONValue] = [:]
        var order: [String] = []
        var head = 0
    }

    private let state = Mutex(State())
    public let capacity: Int
    public let minimumBytes: Int

    public init(capacity: Int = 256, minimumBytes: Int = 4096) {
        self.capacity = capacity
        self.minimumBytes = minimumBytes
    }

    /// The input of `runID`, parsed from `text` unless it is cached.
    public func input(runID: String, text: String) throws -> JSONValue {
        guard text.utf8.count >= minimumBytes else { return try JSONValue.parse(text) }
        if let hit = state.withLock({ $0.values[runID] }) { return hit }
        let value = try JSONValue.parse(text)
        state.withLock { s in
            guard s.values[runID] == nil else { return }
            s.values[runID] = value
            s.order.append(runID)
            if s.order.count - s.head > capacity {
                s.values[s.order[s.head]] = nil
                s.head += 1
                if s.head > capacity {
                    s.order.removeFirst(s.head)
                    s.head = 0
                }
            }
        }
        return value
    }
}
