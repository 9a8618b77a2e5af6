import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowStorePostgres
import WorkflowTestSupport

/// Issue #9 at the engine: values that arrive at run time (templates over the run input, step results) are held to
/// the same bounds as a definition, and a run that cannot be read fails alone instead of stopping the node.
@Suite struct HardeningEngineTests {
    /// Finding 2: `payment-with-delay` takes its delay from the run input. A delay of Int64.max used to trap in the
    /// SQLite driver, and the committed task trapped again at every restart.
    @Test(arguments: TestDriver.all) func aHugeDelayFromTheRunInputFailsTheStepNotTheNode(_ driver: TestDriver) async throws {
        try await withEngine(driver) { h in
            let definition = try await h.register(
                """
                {"name": "pause", "version": "1.0.0", "definition": {"steps": [
                  {"id": "wait", "type": "delay", "config": {"duration_ms": "${input.ms}"}},
                  {"id": "signal", "type": "wait_for_signal", "depends_on": ["wait"], "config": {"signal": "go", "timeout_ms": "${input.ms}"}}
                ]}}
                """
            )
            for ms: JSONValue in [9.223372036854775807e18, -1, 1.5, "soon"] {
                let run = try await h.engine.start(definition: definition, input: ["ms": ms])
                let failed = try await h.waitForRun(run.id)
                #expect(failed.status == .failed)
                let step = try await h.steps(run.id)["wait"]
                #expect(step?.error?["code"] == "invalid_config", "\(ms)")
            }
            // The node is still working.
            let ok = try await h.engine.start(definition: definition, input: ["ms": 1])
            try await h.engine.signal(runID: ok.id, name: "go", payload: ["yes": true])
            #expect(try await h.waitForRun(ok.id).status == .completed)
        }
    }

    /// Finding 6: sixteen transforms that each double their input used to turn 1 KB into 65 MB.
    @Test func stepOutputsAreCapped() async throws {
        var limits = WorkflowLimits()
        limits.maxOutputBytes = (64 << 10) + 16  // 64 KiB of text and its quotes
        try await withEngine(limits: limits) { h in
            var steps = [#"{"id": "s0", "type": "transform", "config": {"output": "${input.text}"}}"#]
            for i in 1...16 {
                steps.append(
                    #"{"id": "s\#(i)", "type": "transform", "depends_on": ["s\#(i - 1)"], "config": {"output": "${steps.s\#(i - 1).output + steps.s\#(i - 1).output}"}}"#
                )
            }
            let definition = try await h.register(
                #"{"name": "double", "version": "1.0.0", "definition": {"steps": [\#(steps.joined(separator: ","))]}}"#
            )
            let run = try await h.engine.start(definition: definition, input: ["text": .string(String(repeating: "x", count: 1024))])
            let failed = try await h.waitForRun(run.id)
            #expect(failed.status == .failed)
            let recorded = try await h.steps(run.id)
            // 1 KB doubled six times is 64 KB: the seventh doubling is over the limit and fails its step.
            #expect(recorded["s6"]?.status == .success)
            // The transform's rendered config is its output: the bound is met when rendering, before anything is stored.
            #expect(recorded["s7"]?.error?["code"] == "config_too_large")
            #expect(recorded["s8"] == nil)
        }
    }

    /// Finding 5: a sub_workflow that starts itself twice per level multiplied at ~1,500 runs/s, and cancelling the
    /// root did not stop the descendants. Now the tree is bounded, and cancelling the root stops all of it at once.
    @Test(arguments: TestDriver.all) func aSelfMultiplyingTreeIsBoundedAndCancelledWhole(_ driver: TestDriver) async throws {
        var limits = WorkflowLimits()
        limits.maxRunsPerTree = 300
        try await withEngine(driver, limits: limits) { h in
            _ = try await h.register(
                """
                {"name": "fork", "version": "1.0.0", "definition": {"steps": [
                  {"id": "pause", "type": "delay", "config": {"duration_ms": 20}},
                  {"id": "left", "type": "sub_workflow", "depends_on": ["pause"], "config": {"workflow": "fork"}},
                  {"id": "right", "type": "sub_workflow", "depends_on": ["pause"], "config": {"workflow": "fork"}}
                ]}}
                """
            )
            let definition = try await h.registry.resolve("fork")
            // Left alone, the tree grows to its limit; the start that would pass it fails, and so, step by step, does
            // the root, whose failure stops the whole tree.
            let root = try await h.engine.start(definition: definition, input: [:])
            let failed = try await h.waitForRun(root.id, timeout: .seconds(150))  // PostgreSQL under the full suite is slow
            #expect(failed.status == .failed)
            try await waitUntil("every descendant has finished", timeout: .seconds(30)) {
                try await h.store.runTreeUnfinished(rootRunID: root.id, limit: 1).isEmpty
            }
            // Checked as each child starts: starts at the same moment can pass together, at most one per worker.
            let count = try await h.store.runTreeCount(rootRunID: root.id)
            #expect(count >= 300 && count <= 300 + h.engine.configuration.maxConcurrentSteps, "\(count) runs")
            let refused = try await h.store.runList(RunListParams(limit: 1000)).contains {
                $0.error?["message"]?.stringValue?.contains("at most 300 runs") ?? false
            }
            #expect(refused, "a start was refused by the tree limit")

            // Cancelling a growing root stops every descendant promptly, however deep.
            let second = try await h.engine.start(definition: definition, input: [:])
            try await waitUntil("the second tree grows", timeout: .seconds(30)) {
                try await h.store.runTreeCount(rootRunID: second.id) >= 60
            }
            _ = try await h.engine.cancel(runID: second.id)
            try await waitUntil("every descendant is cancelled", timeout: .seconds(10)) {
                try await h.store.runTreeUnfinished(rootRunID: second.id, limit: 1).isEmpty
            }
            let settled = try await h.store.runTreeCount(rootRunID: second.id)
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await h.store.runTreeCount(rootRunID: second.id) == settled, "the cancelled tree stopped growing")
        }
    }

    /// Nested fan-out multiplies (1,000 items of 1,000 items are a million runs): every foreach's items count against
    /// the whole tree's bound, also those started in the same transaction as their parent item.
    @Test(arguments: TestDriver.all) func nestedForeachIsHeldToTheTreeBound(_ driver: TestDriver) async throws {
        var limits = WorkflowLimits()
        limits.maxRunsPerTree = 50
        try await withEngine(driver, limits: limits) { h in
            let definition = try await h.register(
                """
                {"name": "nested", "version": "1.0.0", "definition": {"steps": [
                  {"id": "outer", "type": "foreach", "config": {"items": "${input.rows}", "max_concurrency": 10, "steps": [
                    {"id": "inner", "type": "foreach", "config": {"items": "${input.cols}", "max_concurrency": 10, "steps": [
                      {"id": "cell", "type": "noop"}]}}]}}]}}
                """
            )
            let run = try await h.engine.start(
                definition: definition,
                input: ["rows": .array((0..<10).map { .number(Double($0)) }), "cols": .array((0..<10).map { .number(Double($0)) })]
            )
            let failed = try await h.waitForRun(run.id, timeout: .seconds(60))
            #expect(failed.status == .failed)
            let stepErrors = try await h.steps(run.id).mapValues { $0.error?.canonicalString() ?? "" }
            #expect(stepErrors["outer"]?.contains("past 50 runs (--max-runs-per-tree)") == true, "\(stepErrors)")
            let tree = try await h.store.runTreeCount(rootRunID: run.id)
            #expect(tree <= 50, "the tree grew to \(tree) runs")
            // Within the bound, the same workflow completes.
            let small = try await h.engine.start(
                definition: definition,
                input: ["rows": [0, 1, 2], "cols": [0, 1, 2]]
            )
            #expect(try await h.waitForRun(small.id, timeout: .seconds(60)).status == .completed)
        }
    }

    /// A run whose stored rows cannot be read (a poison task) is failed with internal_error; the node carries on
    /// with everyone else's work.
    @Test(arguments: TestDriver.all) func aPoisonRunIsFailedAndTheNodeCarriesOn(_ driver: TestDriver) async throws {
        var poisonID = ""
        let definitionJSON = """
            {"name": "two", "version": "1.0.0", "definition": {"steps": [
              {"id": "a", "type": "noop"}, {"id": "b", "type": "echo", "depends_on": ["a"], "config": {"x": 1}}]}}
            """
        try await withEngine(
            driver,
            beforeStart: { h in
                let definition = try await h.register(definitionJSON)
                let id = try await h.engine.start(definition: definition, input: ["k": 1]).id
                poisonID = id
                if let postgres = h.store as? PostgresStore {
                    // JSON that PostgreSQL stores but uwf's strict reader refuses: a number of 401 digits (beyond double).
                    try await postgres.client.query("UPDATE runs SET input = '{\"k\": 1e400}'::jsonb WHERE id = \(id)", logger: Logger(label: "test"))
                    try await postgres.client.query(
                        "UPDATE step_runs SET state = '[1e400]'::jsonb WHERE run_id = \(id)",
                        logger: Logger(label: "test")
                    )
                } else {
                    // Corrupt the run row the way a bad disk or a bad manual edit would.
                    let queue = try DatabaseQueue(path: h.directory.appendingPathComponent("uwf.sqlite").path)
                    try await queue.write { db in try db.execute(sql: "UPDATE runs SET input = '{\"k\": ' WHERE id = ?", arguments: [id]) }
                    try queue.close()
                }
            }
        ) { h in
            try await waitUntil("the poison run is failed") {
                (try? await h.store.runGet(tenantID: defaultTenantID, id: poisonID))?.status == .failed
            }
            let poisoned = try await h.waitForRun(poisonID)
            #expect(poisoned.status == .failed)
            #expect(poisoned.error?["code"] == "internal_error")
            #expect(try await h.store.taskCount(runID: poisonID) == 0)
            let healthy = try await h.engine.start(definition: try await h.registry.resolve("two"), input: [:])
            #expect(try await h.waitForRun(healthy.id).status == .completed)
            // The unreadable values were wrapped, so the run can be shown (and its history read) from now on.
            #expect(poisoned.input["unreadable"] != nil)
            #expect(try await h.events(poisonID).last?.type == "run_failed")
        }
    }
}
