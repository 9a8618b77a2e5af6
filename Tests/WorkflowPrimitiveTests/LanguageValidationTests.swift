import Foundation
import Testing
import WorkflowPrimitive

/// Validation of the constructs of the language beyond plain steps: every problem, with its pointer.
@Suite struct LanguageValidationTests {
    func pointers(_ steps: String, extra: String = "") -> [String: String] {
        let json = #"{"name": "wf", "version": "1.0.0", "definition": {"steps": \#(steps)\#(extra)}}"#
        do {
            _ = try WorkflowDocument.validate(try JSONValue.parse(json))
            return [:]
        } catch let error as ValidationError {
            return Dictionary(error.issues.map { ($0.pointer, $0.message) }, uniquingKeysWith: { a, b in a + "; " + b })
        } catch {
            Issue.record("unexpected \(error)")
            return [:]
        }
    }

    @Test func foreachBodiesAreValidatedWithTheirOwnPointersAndNames() {
        let found = pointers(
            """
            [{"id": "each", "type": "foreach", "config": {"items": "${input.list}", "max_concurrency": 0, "steps": [
               {"id": "a", "type": "echo", "config": {"v": "${item.x}", "i": "${index}", "c": "${input.currency}"}},
               {"id": "b", "type": "teleport", "depends_on": ["ghost"]},
               {"id": "c", "type": "echo", "config": {"v": "${steps.each.output}"}}
             ]}},
             {"id": "outside", "type": "echo", "depends_on": ["each"], "config": {"v": "${item}"}}]
            """
        )
        #expect(found["/definition/steps/0/config/max_concurrency"]?.contains("from 1 to 10000") == true)
        #expect(found["/definition/steps/0/config/steps/1/type"]?.contains("unknown step type 'teleport'") == true)
        #expect(found["/definition/steps/0/config/steps/1/depends_on/0"] == "unknown step 'ghost'")
        #expect(found["/definition/steps/0/config/steps/2"]?.contains("reads unknown step 'each'") == true, "nested steps see their siblings only")
        #expect(found["/definition/steps/1"]?.contains("unknown name 'item'") == true, "item exists only inside a foreach")
        #expect(found["/definition/steps/0/config/steps/0"] == nil, "item, index and input are known inside")
    }

    @Test func newStepTypesCheckTheirConfig() {
        let found = pointers(
            """
            [{"id": "w", "type": "wait_for_signal", "config": {"signal": "has space", "timeout_ms": -5, "on_timeout": "retry"}},
             {"id": "s", "type": "sub_workflow", "config": {"version": "one", "input": 3}},
             {"id": "r", "type": "switch", "config": {"cases": [{"when": "1 = 1", "next": "x"}], "default": ["w"]}}]
            """
        )
        #expect(found["/definition/steps/0/config/signal"] != nil)
        #expect(found["/definition/steps/0/config/timeout_ms"] != nil)
        #expect(found["/definition/steps/0/config/on_timeout"] == "must be 'fail' or 'continue'")
        #expect(found["/definition/steps/1/config/workflow"] == "is required for a sub_workflow step")
        #expect(found["/definition/steps/1/config/version"] != nil && found["/definition/steps/1/config/input"] == "must be an object")
        #expect(found["/definition/steps/2/config/cases/0/next"] == "must be an array of step ids")
        #expect(found["/definition/steps/2/config/cases/0/when"]?.contains("invalid expression") == true)
        #expect(found["/definition/steps/2/config/default/0"]?.contains("must depend on 'r'") == true)
    }

    @Test func compensationsAndOnFailure() {
        let found = pointers(
            """
            [{"id": "debit", "type": "noop", "continue_on_error": "yes",
              "compensate": {"id": "x", "type": "echo", "config": {"v": "${steps.nope.output}"}}},
             {"id": "on_failure", "type": "noop"},
             {"id": "b", "type": "noop", "compensate": {"type": "foreach", "config": {"items": [], "steps": [{"id": "n", "type": "noop"}]}}}]
            """,
            extra: #", "on_failure": {"type": "echo", "depends_on": ["debit"]}"#
        )
        #expect(found["/definition/steps/0/continue_on_error"] == "must be a boolean")
        #expect(found["/definition/steps/0/compensate/id"]?.contains("unknown field 'id'") == true)
        #expect(found["/definition/steps/0/compensate"]?.contains("reads unknown step 'nope'") == true)
        #expect(found["/definition/steps/1/id"]?.contains("reserved") == true)
        #expect(found["/definition/steps/2/compensate/type"]?.contains("cannot be used here") == true)
        #expect(found["/definition/on_failure/depends_on"]?.contains("unknown field") == true)
    }

    @Test func aValidSagaCompiles() throws {
        let (_, plan) = try WorkflowDocument.validate(
            try JSONValue.parse(
                """
                {"name": "saga", "version": "1.0.0", "definition": {"steps": [
                  {"id": "debit", "type": "noop", "compensate": {"type": "echo", "config": {"undo": "${steps.debit.output}"}}},
                  {"id": "credit", "type": "noop", "depends_on": ["debit"], "continue_on_error": true}
                ], "on_failure": {"type": "echo", "config": {"why": "${run.error.message}"}}}}
                """
            )
        )
        #expect(plan.step(for: "debit.compensate")?.type == .echo)
        #expect(plan.step(for: "on_failure")?.type == .echo)
        #expect(plan.step(for: "credit")?.continueOnError == true)
        #expect(plan.step(for: "credit.compensate") == nil)
    }
}
