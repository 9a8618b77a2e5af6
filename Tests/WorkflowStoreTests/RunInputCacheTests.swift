import Testing
import WorkflowPrimitive
import WorkflowStore

@Suite struct RunInputCacheTests {
    @Test func reusesLargeInputsAndEvictsTheOldest() throws {
        let cache = RunInputCache(capacity: 2, minimumBytes: 10)
        let big = #"{"items": [1, 2, 3, 4, 5]}"#
        #expect(try cache.input(runID: "a", text: big) == ["items": [1, 2, 3, 4, 5]])
        // A cached run answers from the cache (a run's input never changes, so the text is not looked at again).
        #expect(try cache.input(runID: "a", text: #"{"items": "changed"}"#) == ["items": [1, 2, 3, 4, 5]])
        _ = try cache.input(runID: "b", text: big)
        _ = try cache.input(runID: "c", text: big)
        #expect(try cache.input(runID: "a", text: #"{"items": "changed"}"#) == ["items": "changed"], "evicted, parsed again")
        // Small inputs are never cached.
        #expect(try cache.input(runID: "s", text: "{}") == [:])
        #expect(try cache.input(runID: "s", text: #"{"x":1}"#) == ["x": 1])
        #expect(throws: (any Error).self) { try cache.input(runID: "z", text: "{not json at all}") }
    }
}
