import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Row mapping: PostgreSQL rows to records.
extension PostgresStore {
    static func json(_ text: String?) throws -> JSONValue? {
        guard let text else { return nil }
        return try JSONValue.parse(text)
    }

    static func definition(_ row: PostgresRow) throws -> DefinitionRecord {
        let r = row.makeRandomAccess()
        return DefinitionRecord(
            id: try r["id"].decode(String.self),
            tenantID: try r["tenant_id"].decode(String.self),
            name: try r["name"].decode(String.self),
            version: try r["version"].decode(String.self),
            description: try r["description"].decode(String?.self),
            spec: try json(try r["definition"].decode(String.self)) ?? .null,
            checksum: try r["checksum"].decode(String.self),
            createdBy: try r["created_by"].decode(String?.self),
            createdAt: try r["created_at"].decode(Date.self),
            // A status this version does not know starts nothing.
            status: DefinitionStatus(rawValue: try r["status"].decode(String.self)) ?? .retired,
            approvals: DefinitionApproval.decode(try json(try r["approvals"].decode(String?.self)))
        )
    }

    /// With `inputs`, a large input parsed before is reused (a run's input never changes).
    static func run(_ row: PostgresRow, inputs: RunInputCache? = nil) throws -> RunRecord {
        let r = row.makeRandomAccess()
        let id = try r["id"].decode(String.self)
        let inputText = try r["input"].decode(String.self)
        let input = try inputs.map { try $0.input(runID: id, text: inputText) } ?? json(inputText) ?? .null
        var run = RunRecord(
            id: id,
            tenantID: try r["tenant_id"].decode(String.self),
            definitionID: try r["definition_id"].decode(String.self),
            workflowName: try r["workflow_name"].decode(String.self),
            workflowVersion: try r["workflow_version"].decode(String.self),
            status: RunStatus(rawValue: try r["status"].decode(String.self)) ?? .failed,
            input: input,
            output: try json(try r["output"].decode(String?.self)),
            error: try json(try r["error"].decode(String?.self)),
            idempotencyKey: try r["idempotency_key"].decode(String?.self),
            requestHash: try r["request_hash"].decode(String?.self),
            parentRunID: try r["parent_run_id"].decode(String?.self),
            parentStepID: try r["parent_step_id"].decode(String?.self),
            itemIndex: try r["item_index"].decode(Int?.self),
            bodyPath: try r["body_path"].decode(String?.self),
            compensated: try r["compensated"].decode(Bool?.self),
            pendingSignals: PendingSignal.decode(try json(try r["signals"].decode(String?.self))),
            deadLetter: try r["dead_letter"].decode(Bool.self),
            rootRunID: try r["root_run_id"].decode(String?.self),
            keyGenerations: RunRecord.decodeGenerations(try json(try r["key_generations"].decode(String?.self))),
            priority: try r["priority"].decode(Int.self),
            createdAt: try r["created_at"].decode(Date.self),
            startedAt: try r["started_at"].decode(Date?.self),
            completedAt: try r["completed_at"].decode(Date?.self),
            updatedAt: try r["updated_at"].decode(Date.self)
        )
        run.createdBy = try r["created_by"].decode(String?.self)
        run.traceParent = try r["trace_parent"].decode(String?.self)
        return run
    }

    static func step(_ row: PostgresRow) throws -> StepRunRecord {
        let r = row.makeRandomAccess()
        return StepRunRecord(
            runID: try r["run_id"].decode(String.self),
            stepID: try r["step_id"].decode(String.self),
            status: StepStatus(rawValue: try r["status"].decode(String.self)) ?? .failed,
            attempt: try r["attempt"].decode(Int.self),
            input: try json(try r["input"].decode(String?.self)),
            output: try json(try r["output"].decode(String?.self)),
            error: try json(try r["error"].decode(String?.self)),
            state: StepState(json: try json(try r["state"].decode(String?.self))),
            startedAt: try r["started_at"].decode(Date?.self),
            completedAt: try r["completed_at"].decode(Date?.self),
            updatedAt: try r["updated_at"].decode(Date.self)
        )
    }

    static func event(_ row: PostgresRow) throws -> RunEventRecord {
        let r = row.makeRandomAccess()
        return RunEventRecord(
            runID: try r["run_id"].decode(String.self),
            seq: try r["seq"].decode(Int.self),
            type: try r["type"].decode(String.self),
            stepID: try r["step_id"].decode(String?.self),
            data: try json(try r["data"].decode(String.self)) ?? .null,
            at: try r["at"].decode(Date.self)
        )
    }

    static func task(_ row: PostgresRow) throws -> TaskRecord {
        let r = row.makeRandomAccess()
        return TaskRecord(
            id: try r["id"].decode(Int64.self),
            tenantID: try r["tenant_id"].decode(String.self),
            runID: try r["run_id"].decode(String.self),
            stepID: try r["step_id"].decode(String?.self),
            kind: TaskKind(rawValue: try r["kind"].decode(String.self)) ?? .step,
            availableAt: try r["available_at"].decode(Date.self),
            priority: try r["priority"].decode(Int.self),
            leaseOwner: try r["lease_owner"].decode(String?.self),
            leaseExpiresAt: try r["lease_expires_at"].decode(Date?.self),
            leaseToken: try r["lease_token"].decode(Int64.self)
        )
    }
}
