import WorkflowIdentity
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore

/// Keys scoped to workflow names: such a caller sees only those workflows and their runs; anything else answers as
/// if it did not exist (404), like another tenant's rows.
extension WorkflowAPI {
    /// `definition`, if the caller sees it.
    func visible(_ definition: CompiledDefinition, to principal: Principal) throws -> CompiledDefinition {
        guard principal.sees(workflow: definition.record.name) else {
            throw WorkflowError(.workflowNotFound, "no workflow \(definition.record.name) is registered")
        }
        return definition
    }

    /// Throws `run_not_found` unless the caller sees the run (one more read, for scoped keys only).
    func checkRun(_ runID: String, visibleTo principal: Principal) async throws {
        guard principal.workflows != nil else { return }
        guard let run = try await queries.store.runGet(tenantID: principal.tenantID, id: runID), principal.sees(workflow: run.workflowName)
        else { throw WorkflowError(.runNotFound, "no run \(runID)") }
    }

    /// The definition ids a scoped caller may list runs of (nil: no restriction).
    func visibleDefinitionIDs(_ principal: Principal) async throws -> Set<String>? {
        guard let names = principal.workflows else { return nil }
        var ids: Set<String> = []
        for name in names.sorted() {
            ids.formUnion(try await queries.store.definitionVersions(tenantID: principal.tenantID, name: name).map(\.id))
        }
        return ids
    }
}
