import Foundation
import Testing
import WorkflowPrimitive

@Suite struct DefinitionValidationTests {
    func issues(_ json: String) -> [ValidationIssue] {
        guard let document = try? JSONValue.parse(json) else {
            Issue.record("test JSON does not parse")
            return []
        }
        do {
            _ = try WorkflowDocument.validate(document)
            return []
        } catch {
            return error.issues
        }
    }

    func wrap(_ steps: String, extra: String = "") -> String {
        #"{"name": "wf", "version": "1.0.0", "definition": {"steps": \#(steps)\#(extra)}}"#
    }

    @Test func acceptsTheIssueExample() throws {
        let (definition, plan) = try WorkflowDocument.validate(
            try JSONValue.parse(
                """
                {"name": "customer-onboarding", "version": "2.1.0", "description": "…",
                 "definition": {
                   "timeout_ms": 60000,
                   "steps": [
                     {"id": "validate", "type": "http_request",
                      "config": {"url": "http://127.0.0.1:9000/verify", "method": "POST",
                                 "body": {"customer": "${input.customer}"}, "timeout_ms": 5000},
                      "retry": {"max_attempts": 3, "backoff": "exponential", "initial_interval_ms": 200,
                                "max_interval_ms": 5000, "jitter": true}},
                     {"id": "create_account", "type": "transform", "depends_on": ["validate"],
                      "when": "steps.validate.output.status == 200",
                      "config": {"output": {"account_for": "${input.customer.name}"}}}
                   ],
                   "output": {"account": "${steps.create_account.output}"}}}
                """
            )
        )
        #expect(definition.name == "customer-onboarding")
        #expect(definition.version.description == "2.1.0")
        #expect(plan.steps.map(\.id) == ["validate", "create_account"])
        #expect(plan.steps[0].retry == RetryPolicy(maxAttempts: 3, backoff: .exponential, initialIntervalMs: 200, maxIntervalMs: 5000, jitter: true))
        #expect(plan.steps[1].dependencies == [0])
        #expect(plan.steps[1].reads == [0])
        #expect(plan.timeoutMs == 60000)
    }

    @Test func acceptsNameAsAliasOfID() throws {
        let (_, plan) = try WorkflowDocument.validate(
            try JSONValue.parse(wrap(#"[{"name": "a", "type": "noop"}, {"name": "b", "type": "echo", "depends_on": ["a"]}]"#))
        )
        #expect(plan.steps.map(\.id) == ["a", "b"])
    }

    @Test func acceptsYAML() throws {
        let yaml = """
            name: loan
            version: 1.0.0
            definition:
              steps:
                - id: score
                  type: transform
                  config:
                    output: {approved: true, limit: 5000.5, note: "yes"}
                - id: done
                  type: echo
                  depends_on: [score]
                  when: steps.score.output.approved
            """
        let document = try WorkflowDocument.decode(Data(yaml.utf8), format: .yaml)
        #expect(document["definition"]?["steps"]?.arrayValue?.first?["config"]?["output"] == ["approved": true, "limit": 5000.5, "note": "yes"])
        let (_, plan) = try WorkflowDocument.validate(document)
        #expect(plan.steps.count == 2)
    }

    @Test func rejectsMalformedDocuments() {
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data("{".utf8), format: .json) }
        #expect(throws: DocumentError.self) { try WorkflowDocument.decode(Data("a: [".utf8), format: .yaml) }
    }

    @Test func unknownStepType() {
        #expect(
            issues(wrap(#"[{"id": "a", "type": "teleport"}]"#)) == [
                ValidationIssue(
                    pointerText: "/definition/steps/0/type",
                    message:
                        "unknown step type 'teleport'; known types: echo, noop, transform, delay, http_request, fail, switch, foreach, sub_workflow, wait_for_signal, approval, notify"
                )
            ]
        )
    }

    @Test func duplicateIDs() {
        #expect(
            issues(wrap(#"[{"id": "a", "type": "noop"}, {"id": "a", "type": "noop"}]"#)) == [
                ValidationIssue(pointerText: "/definition/steps/1/id", message: "duplicate step id 'a' (first used by step 0)")
            ]
        )
    }

    @Test func unknownDependency() {
        #expect(
            issues(wrap(#"[{"id": "a", "type": "noop", "depends_on": ["ghost"]}]"#)) == [
                ValidationIssue(pointerText: "/definition/steps/0/depends_on/0", message: "unknown step 'ghost'")
            ]
        )
    }

    @Test func cycleIsNamed() {
        let found = issues(
            wrap(
                #"""
                [{"id": "a", "type": "noop", "depends_on": ["c"]}, {"id": "b", "type": "noop", "depends_on": ["a"]},
                 {"id": "c", "type": "noop", "depends_on": ["b"]}, {"id": "d", "type": "noop"}]
                """#
            )
        )
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("dependency cycle: ") == true)
        let names = found.first.map { $0.message.replacingOccurrences(of: "dependency cycle: ", with: "").components(separatedBy: " -> ") } ?? []
        #expect(Set(names) == ["a", "b", "c"])
        #expect(names.first == names.last && names.count == 4)
        #expect(issues(wrap(#"[{"id": "a", "type": "noop", "depends_on": ["a"]}]"#)).first?.message == "step 'a' depends on itself")
    }

    @Test func badExpressionCarriesPosition() {
        #expect(
            issues(wrap(#"[{"id": "a", "type": "noop", "when": "input.x >> 2"}]"#)) == [
                ValidationIssue(
                    pointerText: "/definition/steps/0/when",
                    message: "invalid expression: expected a value but found '>' at column 10"
                )
            ]
        )
        #expect(
            issues(wrap(#"[{"id": "a", "type": "noop", "when": "inptu.x > 2"}]"#)) == [
                ValidationIssue(pointerText: "/definition/steps/0", message: "unknown name 'inptu' in expression; expected one of input, run, steps")
            ]
        )
    }

    @Test func readingAStepThatIsNotUpstreamIsAnError() {
        #expect(
            issues(
                wrap(
                    #"""
                    [{"id": "a", "type": "noop"}, {"id": "b", "type": "echo", "config": {"x": "${steps.a.output}"}},
                     {"id": "c", "type": "echo", "when": "steps.nope.status == 'SUCCESS'"}]
                    """#
                )
            ) == [
                ValidationIssue(
                    pointerText: "/definition/steps/1",
                    message: "reads step 'a', which is not among its dependencies (add it to depends_on)"
                ),
                ValidationIssue(pointerText: "/definition/steps/2", message: "reads unknown step 'nope'"),
            ]
        )
    }

    @Test func badRetryValues() {
        let found = issues(
            wrap(
                #"""
                [{"id": "a", "type": "noop", "retry": {"max_attempts": 0, "backoff": "linear", "initial_interval_ms": 500,
                  "max_interval_ms": 100, "jitter": "yes", "multiplier": 0.5, "tries": 3}}]
                """#
            )
        )
        #expect(
            found.map(\.pointer) == [
                "/definition/steps/0/retry/tries", "/definition/steps/0/retry/max_attempts", "/definition/steps/0/retry/backoff",
                "/definition/steps/0/retry/max_interval_ms", "/definition/steps/0/retry/multiplier", "/definition/steps/0/retry/jitter",
            ]
        )
    }

    @Test func missingRequiredConfig() {
        #expect(
            issues(
                wrap(
                    #"""
                    [{"id": "h", "type": "http_request"}, {"id": "d", "type": "delay", "config": {}},
                     {"id": "t", "type": "transform", "config": {"output": 1}}]
                    """#
                )
            ) == [
                ValidationIssue(pointerText: "/definition/steps/0/config/url", message: "is required for a http_request step"),
                ValidationIssue(pointerText: "/definition/steps/1/config/duration_ms", message: "is required for a delay step"),
            ]
        )
    }

    @Test func badConfigValues() {
        #expect(
            issues(
                wrap(
                    #"""
                    [{"id": "h", "type": "http_request", "config": {"url": "ftp://x", "method": "BREW", "headers": {"a": 1}}},
                     {"id": "d", "type": "delay", "config": {"duration_ms": -5}}]
                    """#
                )
            ).map(\.pointer) == [
                "/definition/steps/0/config/url", "/definition/steps/0/config/method", "/definition/steps/0/config/headers/a",
                "/definition/steps/1/config/duration_ms",
            ]
        )
    }

    @Test func unknownFieldsAreErrors() {
        #expect(
            issues(
                #"""
                {"name": "wf", "version": "1.0.0", "owner": "me", "definition": {"steps": [
                  {"id": "a", "type": "noop", "retries": 3, "config": {"x": 1}},
                  {"id": "b", "type": "delay", "config": {"duration_ms": 1, "durration": 2}}
                ], "timeout": 5}}
                """#
            ).map(\.pointer) == [
                "/owner", "/definition/timeout", "/definition/steps/0/retries", "/definition/steps/0/config/x",
                "/definition/steps/1/config/durration",
            ]
        )
    }

    @Test func reportsEveryProblemAtOnce() {
        let found = issues(
            #"""
            {"name": "", "version": "one", "definition": {"steps": [
              {"id": "a", "type": "warp"}, {"id": "a", "type": "noop", "depends_on": ["zz"]},
              {"id": "x", "type": "noop", "depends_on": ["y"], "when": "1 +"}, {"id": "y", "type": "noop", "depends_on": ["x"]}
            ]}}
            """#
        )
        #expect(
            Set(found.map(\.pointer)) == [
                "/name", "/version", "/definition/steps/0/type", "/definition/steps/1/id", "/definition/steps/1/depends_on/0",
                "/definition/steps/2/when", "/definition/steps/3/depends_on",
            ]
        )
    }

    @Test func structuralErrors() {
        #expect(issues("[]") == [ValidationIssue(pointerText: "", message: "must be an object, got array")])
        #expect(issues(#"{"name": "wf", "version": "1.0.0"}"#) == [ValidationIssue(pointerText: "/definition", message: "is required")])
        #expect(issues(wrap("[]")) == [ValidationIssue(pointerText: "/definition/steps", message: "must contain at least one step")])
        #expect(
            issues(wrap(#"[{"type": "noop"}, {"id": "9x", "type": "noop"}]"#)).map(\.pointer) == ["/definition/steps/0/id", "/definition/steps/1/id"]
        )
    }
}

@Suite struct RetryPolicyTests {
    @Test func exponentialBackoffGrowsAndIsCapped() {
        let policy = RetryPolicy(maxAttempts: 10, backoff: .exponential, initialIntervalMs: 100, maxIntervalMs: 1000)
        #expect((1...6).map { policy.delayMs(afterAttempt: $0, random: 0.5) } == [100, 200, 400, 800, 1000, 1000])
    }

    @Test func fixedBackoffStaysPut() {
        let policy = RetryPolicy(maxAttempts: 3, backoff: .fixed, initialIntervalMs: 250)
        #expect((1...3).map { policy.delayMs(afterAttempt: $0, random: 0.9) } == [250, 250, 250])
    }

    @Test func jitterSpreadsOverTheUpperHalf() {
        let policy = RetryPolicy(maxAttempts: 3, backoff: .fixed, initialIntervalMs: 1000, jitter: true)
        #expect(policy.delayMs(afterAttempt: 1, random: 0) == 500)
        #expect(policy.delayMs(afterAttempt: 1, random: 0.999_999) == 1000)
    }
}

@Suite struct SemanticVersionTests {
    @Test func parsesAndOrders() throws {
        let versions = ["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "2.0.0", "1.10.0", "1.2.0"].map { SemanticVersion($0)! }
        #expect(versions.sorted().map(\.description) == ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0", "1.2.0", "1.10.0", "2.0.0"])
        for bad in ["1.0", "01.0.0", "1.0.0-", "a.b.c", "1.0.0+", ""] { #expect(SemanticVersion(bad) == nil) }
        #expect(SemanticVersion("1.2.3+build.7")?.build == "build.7")
    }
}
