import Foundation
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// The step types the engine carries out itself when they reach a worker, kept apart from the generic executor path:
/// - `sub_workflow` prepares its child run (the transition that records the result starts it);
/// - `foreach` collects its items' results once every item has finished;
/// - `wait_for_signal` reaches a worker only when its timeout fires.
///
/// `delay` never reaches a worker: its task falls due when the delay ends and the run state machine completes it.
struct ManagedSteps: Sendable {
    let node: EngineNode

    /// How deep `sub_workflow` and `foreach` runs may nest.
    static let maxNesting = 32

    func execute(_ planned: WorkflowPlan.Step, _ work: Work) async -> StepResult {
        let input = work.step.input ?? .object([:])
        switch planned.type {
        case .subWorkflow: return await startChild(input, work)
        case .foreach: return await collectItems(work)
        case .waitForSignal:
            let name = work.step.state?.signalName ?? input["signal"]?.stringValue ?? ""
            if input["on_timeout"]?.stringValue == "continue" {
                return .success(["timed_out": true, "signal": .string(name)])
            }
            return .failure(StepFailure(code: "signal_timeout", message: "no signal '\(name)' arrived in time", retriable: false))
        case .approval:
            // Only its timeout brings an approval step to a worker.
            let progress = work.step.state?.approval ?? ApprovalProgress(required: 1, roles: [], excludeAuthor: false, message: nil, deadline: nil)
            if input["on_timeout"]?.stringValue == "continue" {
                return .success(RunStateMachine.approvalOutput(progress, decision: "timed_out"))
            }
            return .failure(
                StepFailure(
                    code: "approval_timed_out",
                    message: "\(progress.approvals.count) of \(progress.required) approvals arrived before the timeout",
                    retriable: false
                )
            )
        default:
            return .failure(StepFailure(code: "internal_error", message: "\(planned.type.rawValue) steps do not run on workers", retriable: false))
        }
    }

    /// Resolves a `sub_workflow`'s child and builds its run, within the nesting and tree bounds.
    private func startChild(_ input: JSONValue, _ work: Work) async -> StepResult {
        guard let reference = input["workflow"]?.stringValue else {
            return .failure(StepFailure(code: "invalid_config", message: "config.workflow must render to a workflow name", retriable: false))
        }
        let childInput = input["input"] ?? .object([:])
        guard case .object = childInput else {
            return .failure(StepFailure(code: "invalid_config", message: "config.input must render to an object", retriable: false))
        }
        let child: CompiledDefinition
        do {
            // A workflow that calls itself (directly or not) must not nest without end.
            var depth = 1
            var ancestor = work.run.parentRunID
            while let id = ancestor, depth < Self.maxNesting {
                depth += 1
                ancestor = try await node.store.runGet(tenantID: work.run.tenantID, id: id)?.parentRunID
            }
            if depth >= Self.maxNesting {
                let message = "sub_workflow runs nest at most \(Self.maxNesting) deep"
                return .failure(StepFailure(code: "nesting_too_deep", message: message, retriable: false))
            }
            // A workflow that starts itself twice per level multiplies: bound the whole tree, not only its depth.
            let limit = node.registry.limits.maxRunsPerTree
            if try await node.store.runTreeCount(rootRunID: work.run.treeRootID) >= limit {
                let message = "a run tree may hold at most \(limit) runs (--max-runs-per-tree)"
                return .failure(StepFailure(code: "run_tree_too_large", message: message, retriable: false))
            }
            child = try await node.registry.resolveStartable(reference, version: input["version"]?.stringValue, tenantID: work.run.tenantID)
        } catch let error as WorkflowError where [.workflowNotFound, .workflowRetired, .workflowNotActive].contains(error.code) {
            return .failure(StepFailure(code: error.code.rawValue, message: error.message, retriable: false))
        } catch {
            return .failure(StepFailure(code: "registry_unavailable", message: "\(error)", retriable: true))
        }
        let now = node.clock.now()
        var run = RunRecord(
            id: RecordID.make(now: now),
            tenantID: work.run.tenantID,
            definitionID: child.record.id,
            workflowName: child.record.name,
            workflowVersion: child.record.version,
            status: .pending,
            input: childInput,
            parentRunID: work.run.id,
            parentStepID: work.step.stepID,
            rootRunID: work.run.treeRootID,
            createdBy: work.run.createdBy,
            priority: work.run.priority,
            createdAt: now,
            updatedAt: now
        )
        run.traceParent = work.run.traceParent  // one trace for the whole tree
        return .startChild(ChildRun(run: run, plan: child.plan))
    }

    /// Every item of a `foreach` has finished: collects their results in item order (one read, once per foreach).
    private func collectItems(_ work: Work) async -> StepResult {
        guard case .foreach(let state)? = work.step.state, state.phase == .collect else {
            return .failure(StepFailure(code: "internal_error", message: "foreach resumed before its items finished", retriable: false))
        }
        let children: [RunRecord]
        do {
            children = try await node.store.runChildren(parentRunID: work.run.id, stepID: work.step.stepID, unfinishedOnly: false)
        } catch {
            return .failure(StepFailure(code: "store_unavailable", message: "\(error)", retriable: true))
        }
        let items = children.filter { $0.itemIndex.map { RecordID.item(base: state.base, index: $0) } == $0.id }
        guard items.count == state.total else {
            let message = "found \(items.count) of the foreach's \(state.total) items"
            return .failure(StepFailure(code: "internal_error", message: message, retriable: true))
        }
        let results: [JSONValue] = items.map { item in
            item.status == .completed ? item.output ?? .null : .object(["error": item.error ?? .null])
        }
        return .success(["results": .array(results)])
    }
}
