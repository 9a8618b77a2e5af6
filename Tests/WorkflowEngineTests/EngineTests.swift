import Foundation
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore

@Suite struct EngineTests {
    @Test(arguments: TestDriver.all) func sequentialStepsPassOutputsAlong(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "seq", "version": "1.0.0", "definition": {
                  "steps": [
                    {"id": "a", "type": "transform", "config": {"output": {"n": "${input.n}"}}},
                    {"id": "b", "type": "transform", "depends_on": ["a"], "config": {"output": "${steps.a.output.n * 2}"}},
                    {"id": "c", "type": "echo", "depends_on": ["b"], "config": {"doubled": "${steps.b.output}", "text": "n=${input.n}"}}
                  ],
                  "output": {"result": "${steps.c.output}"}}}
                """
            )
            let run = try await h.engine.start(definition: definition, input: ["n": 21])
            let done = try await h.waitForRun(run.id)
            #expect(done.status == .completed)
            #expect(done.output == ["result": ["doubled": 42, "text": "n=21"]])
            let steps = try await h.steps(run.id)
            #expect(steps.values.allSatisfy { $0.status == .success && $0.attempt == 1 })
            let types = try await h.events(run.id).map(\.type)
            #expect(types.first == "run_created")
            #expect(types.last == "run_completed")
            #expect(types.filter { $0 == "step_succeeded" }.count == 3)
            #expect(try await h.store.taskCount(runID: run.id) == 0)
        }
    }
}
