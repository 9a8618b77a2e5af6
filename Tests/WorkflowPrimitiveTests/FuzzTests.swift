import Foundation
import Testing

@testable import WorkflowPrimitive

/// Bounded fuzzing of every parser that reads user input: the JSON reader, the YAML path, the expression parser
/// and the template renderer. Inputs are mutations of valid seeds (byte flips, structural characters, spliced and
/// repeated slices) from a seeded generator, so a failure names the seed that reproduces it.
///
/// The property is the same for all: the parser returns or throws its own error type, and never traps, hangs or
/// recurses off the stack; what JSON parses writes back to an equal value. `UWF_FUZZ_ITERATIONS` (default 3,000 per
/// target) and `UWF_FUZZ_SEED` (default: a fixed seed) tune it; `.ci/run` runs more iterations with a fresh seed.
/// Crashes it found are kept below as regression cases (`regressions`).
@Suite struct FuzzTests {
    static var iterations: Int { ProcessInfo.processInfo.environment["UWF_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 3_000 }
    static var seed: UInt64 { ProcessInfo.processInfo.environment["UWF_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5eed_0009 }

    /// SplitMix64: small, fast and reproducible from its seed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let tokens: [String] = [
        "{", "}", "[", "]", "\"", ":", ",", "-", "1e400", "9223372036854775807", "\\u", "\\ud800", "&a", "*a", "\n  ", "- ",
        "${", "}", "(", ")", "!", "&&", "||", "==", "in", "'", ".", "\u{0}", "\u{FF}", "null", "true", "1e-400", "0.", "--",
    ]

    static func mutate(_ seed: String, _ rng: inout Generator) -> [UInt8] {
        var bytes = Array(seed.utf8)
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
            let at = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !bytes.isEmpty:
                bytes[min(at, bytes.count - 1)] = UInt8.random(in: 0...255, using: &rng)
            case 1:
                bytes.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
            case 2 where !bytes.isEmpty:
                let end = min(bytes.count, at + Int.random(in: 1...16, using: &rng))
                bytes.removeSubrange(min(at, end)..<end)
            case 3 where !bytes.isEmpty:
                // Repeat a slice many times: deep nesting and long inputs come from here.
                let start = Int.random(in: 0..<bytes.count, using: &rng)
                let slice = Array(bytes[start..<min(bytes.count, start + Int.random(in: 1...4, using: &rng))])
                let copies = Int.random(in: 1...2_000, using: &rng)
                bytes.insert(contentsOf: Array(repeating: slice, count: copies).joined(), at: at)
            default:
                bytes.insert(contentsOf: Array(seed.utf8.prefix(Int.random(in: 0...32, using: &rng))), at: at)
            }
        }
        return bytes
    }

    static let jsonSeeds = [
        #"{"name": "greet", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "echo", "config": {"x": [1, 2.5e3, "s\n"]}}]}}"#,
        #"[null, true, false, -0.5, {"a": {"b": []}}, "\u00e9\ud83d\ude00"]"#,
    ]

    @Test func jsonReader() {
        var rng = Generator(state: Self.seed)
        for i in 0..<Self.iterations {
            let bytes = Self.mutate(Self.jsonSeeds[i % Self.jsonSeeds.count], &rng)
            guard let value = try? JSONValue.parse(Data(bytes)) else { continue }
            // Whatever is accepted writes back to an equal value (nothing silently becomes null).
            #expect((try? JSONValue.parse(value.canonicalData())) == value, "seed \(Self.seed) iteration \(i)")
        }
    }

    static let yamlSeeds = [
        "name: greet\nversion: 1.0.0\ndefinition:\n  steps:\n    - id: a\n      type: echo\n      config: {x: [1, 2], y: &y {k: v}, z: *y}\n",
        "a: &a [x, y]\nb: [*a, *a, *a]\nc: |\n  text\n",
    ]

    @Test func yamlPath() {
        var rng = Generator(state: Self.seed &+ 1)
        for i in 0..<Self.iterations {
            let bytes = Self.mutate(Self.yamlSeeds[i % Self.yamlSeeds.count], &rng)
            if let value = try? WorkflowDocument.decode(Data(bytes), format: .yaml, maxDepth: 66) {
                _ = try? WorkflowDocument.validate(value)
            }
        }
    }

    static let expressionSeeds = [
        "input.amount > 1000 && !(input.tier in ['gold', 'platinum']) || len(steps.a.output.items) == 0",
        "upper(input.name) + '-' + (input.n * 2 - 1) % 7 / 3",
        "steps['x'].output[0].y != null && exists(input.a.b[-1])",
    ]

    @Test func expressionParserAndEvaluator() {
        var rng = Generator(state: Self.seed &+ 2)
        let scope = ExpressionScope(roots: [
            "input": ["amount": 5000, "tier": "gold", "name": "ada", "n": 3, "a": ["b": [1, 2]]],
            "steps": ["a": ["output": ["items": []]], "x": ["output": [["y": 1]]]],
        ])
        for i in 0..<Self.iterations {
            let bytes = Self.mutate(Self.expressionSeeds[i % Self.expressionSeeds.count], &rng)
            guard let expression = try? Expression.parse(String(decoding: bytes, as: UTF8.self)) else { continue }
            _ = try? expression.evaluate(in: scope)
        }
    }

    static let templateSeeds = [
        #"{"url": "${input.bank}/accounts/${input.from}/debit", "body": {"amount": "${input.amount}", "note": "$${literal}"}}"#,
        #"{"output": "${upper(steps.hello.output.greeting)}", "list": ["${input.items[0]}", "${len(input.items)}"]}"#,
    ]

    @Test func templateCompilerAndRenderer() {
        var rng = Generator(state: Self.seed &+ 3)
        let scope = ExpressionScope(roots: [
            "input": ["bank": "http://b", "from": "acc", "amount": 10, "items": [1, 2]],
            "steps": ["hello": ["output": ["greeting": "hi"]]],
        ])
        for i in 0..<Self.iterations {
            let bytes = Self.mutate(Self.templateSeeds[i % Self.templateSeeds.count], &rng)
            let value = (try? JSONValue.parse(Data(bytes))) ?? .string(String(decoding: bytes, as: UTF8.self))
            let (template, issues) = Template.compile(value, at: .root)
            if issues.isEmpty { _ = try? template.render(in: scope) }
        }
    }

    /// Inputs the fuzzers (and the issue's reproductions) found; each crashed or hung before its fix.
    @Test(arguments: [
        "input.items[1e300]", "input.items[-1e300]", "1e400", String(repeating: "-", count: 5_000) + "1",
        String(repeating: "a.", count: 3_000) + "b", "len(" + String(repeating: "[", count: 3_000),
    ]) func regressions(_ source: String) {
        let scope = ExpressionScope(roots: ["input": ["items": [1]]])
        if let expression = try? Expression.parse(source) { _ = try? expression.evaluate(in: scope) }
    }
}
