import Foundation
import Testing

@testable import WorkflowPrimitive

/// Issue #9: inputs that used to crash the process, exhaust its memory or change data silently. Each is refused with a
/// clear error now, and none of these tests can crash the test process if the bound fails: they stay small.
@Suite struct HostileInputTests {
    // MARK: strict JSON (finding 10)

    @Test(arguments: [
        (#"{"type":"noop","type":"fail"}"#, "duplicate key 'type'"),
        (#"{"n": 1e400}"#, "out of range"),
        (#"{"n": -1e400}"#, "out of range"),
        ("{\"n\": " + String(repeating: "9", count: 100_000) + "}", "longer than 400"),
        ("[\"\u{FF}\"]", "invalid UTF-8"),
    ]) func jsonRefusesWhatItWouldSilentlyChange(_ text: String, _ expected: String) {
        // Build the invalid UTF-8 case from bytes: a Swift string cannot hold it.
        var bytes = Array(text.utf8)
        if expected == "invalid UTF-8" { bytes = Array(#"[""#.utf8) + [0xFF, 0xFE] + Array(#""]"#.utf8) }
        #expect {
            try JSONValue.parse(Data(bytes))
        } throws: { error in
            (error as? JSONSyntaxError)?.message.contains(expected) ?? false
        }
    }

    @Test func jsonNumbersInsideDoubleRangeStillParse() throws {
        #expect(
            try JSONValue.parse("[1.7976931348623157e308, 5e-324, 123456789012345678901234567890]")
                == [1.7976931348623157e308, 5e-324, 123456789012345678901234567890.0]
        )
    }

    // MARK: YAML (findings 3 and 8)

    /// Nested aliases: each level refers to the previous one ten times. Seven levels would expand to 10^7 nodes
    /// (about 34 MB): harmless if the bound failed, refused because it exceeds the node budget.
    @Test func yamlAliasExpansionIsBounded() throws {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...7 {
            let refs = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            text += "a\(level): &a\(level) [\(refs)]\n"
        }
        #expect {
            try WorkflowDocument.decode(Data(text.utf8), format: .yaml)
        } throws: { error in
            (error as? DocumentError)?.message.contains("expands to more than 100000 nodes") ?? false
        }
        // A small use of aliases is fine.
        let small = try WorkflowDocument.decode(Data("base: &b {k: 1}\ncopy: *b\n".utf8), format: .yaml)
        #expect(small == ["base": ["k": 1], "copy": ["k": 1]])
    }

    @Test func yamlNestingIsBounded() throws {
        let flow = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data(flow.utf8), format: .yaml, maxDepth: 66) }
        var block = ""
        for level in 0..<600 { block += String(repeating: " ", count: level * 2) + "k\(level):\n" }
        block += String(repeating: " ", count: 1200) + "leaf"
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data(block.utf8), format: .yaml, maxDepth: 66) }
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data("a: 1\na: 2\n".utf8), format: .yaml) }
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data("n: 1e400\n".utf8), format: .yaml) }
    }

    // MARK: expressions (finding 4)

    @Test(arguments: [
        String(repeating: "(", count: 40_000) + "1" + String(repeating: ")", count: 40_000),
        String(repeating: "!", count: 300_000) + "true",
        String(repeating: "[", count: 100_000),
        "1" + String(repeating: "+1", count: 100_000),
        String(repeating: "(", count: 65) + "1" + String(repeating: ")", count: 65),
        Array(repeating: "1", count: 70).joined(separator: " + "),
        String(repeating: "-", count: 70) + "1",
    ]) func deepExpressionsAreRefusedNotOverflowed(_ source: String) {
        #expect(throws: ExpressionError.self) { try Expression.parse(source) }
    }

    @Test func expressionsAtTheBoundsStillWork() throws {
        let nested = String(repeating: "(", count: 30) + "1" + String(repeating: ")", count: 30)
        #expect(try Expression.parse(nested).evaluate(in: ExpressionScope(roots: [:])) == 1)
        let chain = Array(repeating: "1", count: 60).joined(separator: " + ")
        #expect(try Expression.parse(chain).evaluate(in: ExpressionScope(roots: [:])) == 60)
        // An index far outside any array is null, not a trap.
        let scope = ExpressionScope(roots: ["input": ["items": [1, 2]]])
        #expect(try Expression.parse("input.items[1e300]").evaluate(in: scope) == .null)
        #expect(try Expression.parse("input.items[-9007199254740993]").evaluate(in: scope) == .null)
    }

    @Test func repeatedDoublingFailsInsteadOfFillingMemory() throws {
        var value = JSONValue.string(String(repeating: "x", count: 1 << 19))
        let double = try Expression.parse("input.s + input.s")
        #expect(throws: EvaluationError.self) {
            for _ in 0..<4 { value = try double.evaluate(in: ExpressionScope(roots: ["input": ["s": value]])) }
        }
        #expect(throws: EvaluationError.self) { try Expression.parse("1e300 * 1e300").evaluate(in: ExpressionScope(roots: [:])) }
    }

    // MARK: durations (finding 2)

    @Test(arguments: [
        (#"{"type": "delay", "config": {"duration_ms": 9223372036854775807}}"#, "/definition/steps/0/config/duration_ms"),
        (#"{"type": "delay", "config": {"duration_ms": 2592000001}}"#, "/definition/steps/0/config/duration_ms"),
        (#"{"type": "wait_for_signal", "config": {"signal": "s", "timeout_ms": 9e18}}"#, "/definition/steps/0/config/timeout_ms"),
        (#"{"type": "http_request", "config": {"url": "http://x", "timeout_ms": 1e15}}"#, "/definition/steps/0/config/timeout_ms"),
        (#"{"type": "noop", "timeout_ms": 9223372036854775807}"#, "/definition/steps/0/timeout_ms"),
        (#"{"type": "noop", "retry": {"initial_interval_ms": 1e12}}"#, "/definition/steps/0/retry/initial_interval_ms"),
        (#"{"type": "noop", "retry": {"multiplier": 1e300}}"#, "/definition/steps/0/retry/multiplier"),
    ]) func durationsOutOfRangeAreRefusedWithAPointer(_ step: String, _ pointer: String) throws {
        let document = try JSONValue.parse(
            #"{"name": "d", "version": "1.0.0", "definition": {"steps": [{"id": "s", "#
                + step.dropFirst() + "]}}"
        )
        #expect {
            try WorkflowDocument.validate(document)
        } throws: { error in
            (error as? ValidationError)?.issues.contains { $0.pointer.description == pointer } ?? false
        }
    }

    @Test func renderedDurationsFollowTheSameRule() {
        let limits = WorkflowLimits.default
        #expect(StepType.delay.renderedConfigProblems(["duration_ms": 9.223372036854775807e18], limits: limits).map(\.field) == ["duration_ms"])
        #expect(StepType.delay.renderedConfigProblems(["duration_ms": 1000], limits: limits).isEmpty)
        #expect(StepType.waitForSignal.renderedConfigProblems(["signal": "s", "timeout_ms": -1], limits: limits).map(\.field) == ["timeout_ms"])
        #expect(StepType.foreach.renderedConfigProblems(["max_concurrency": 1e300], limits: limits).map(\.field) == ["max_concurrency"])
    }

    @Test func outputsAreMeasuredWithoutRecursingPastTheLimit() {
        var deep: JSONValue = 1
        for _ in 0..<1000 { deep = [deep] }
        #expect(deep.boundedSize(limit: 1 << 20, maxDepth: 128) == nil)
        #expect(deep.nests(deeperThan: 128))
        let big = JSONValue.string(String(repeating: "y", count: 2 << 20))
        #expect(big.boundedSize(limit: 1 << 20, maxDepth: 128) == nil)
        let small: JSONValue = ["a": [1, 2, "x"]]
        #expect(small.boundedSize(limit: 1 << 20, maxDepth: 128) != nil)
    }
}
