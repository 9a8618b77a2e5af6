import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The API's JSON shapes of stored records (snake_case, RFC 3339 times in UTC with milliseconds).
enum Representation {
    private static let timeStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func time(_ date: Date?) -> JSONValue {
        guard let date else { return .null }
        return .string(date.formatted(timeStyle))
    }

    static func definition(_ d: DefinitionRecord) -> JSONValue {
        [
            "id": .string(d.id), "name": .string(d.name), "version": .string(d.version),
            "description": d.description.map(JSONValue.string) ?? .null, "definition": d.spec, "checksum": .string(d.checksum),
            "created_at": time(d.createdAt), "status": .string(d.status.rawValue),
        ]
    }

    static func runSummary(_ r: RunRecord) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [
            "run_id": .string(r.id), "workflow_id": .string(r.definitionID), "workflow_name": .string(r.workflowName),
            "workflow_version": .string(r.workflowVersion), "status": .string(r.status.rawValue), "error": r.error ?? .null,
            "parent_run_id": r.parentRunID.map(JSONValue.string) ?? .null, "priority": .number(Double(r.priority)),
            "created_at": time(r.createdAt), "started_at": time(r.startedAt), "completed_at": time(r.completedAt),
        ]
        if let step = r.parentStepID { fields["parent_step_id"] = .string(step) }
        if let item = r.itemIndex { fields["item_index"] = .number(Double(item)) }
        if let compensated = r.compensated { fields["compensated"] = .bool(compensated) }
        if r.deadLetter { fields["dead_letter"] = true }
        if !r.pendingSignals.isEmpty {
            fields["pending_signals"] = .array(r.pendingSignals.map { ["name": .string($0.name), "received_at": time($0.receivedAt)] })
        }
        return fields
    }

    static func run(_ r: RunRecord, steps: [StepRunRecord]) -> JSONValue {
        var fields = runSummary(r)
        fields["input"] = r.input
        fields["output"] = r.output ?? .null
        fields["updated_at"] = time(r.updatedAt)
        fields["steps"] = .array(steps.map(step))
        return .object(fields)
    }

    static func step(_ s: StepRunRecord) -> JSONValue {
        [
            "id": .string(s.stepID), "status": .string(s.status.rawValue), "attempts": .number(Double(s.attempt)),
            "output": s.output ?? .null, "error": s.error ?? .null, "started_at": time(s.startedAt),
            "completed_at": time(s.completedAt), "state": s.status == .waiting ? s.state?.publicJSON ?? .null : .null,
        ]
    }

    static func event(_ e: RunEventRecord) -> JSONValue {
        [
            "seq": .number(Double(e.seq)), "type": .string(e.type), "step_id": e.stepID.map(JSONValue.string) ?? .null,
            "at": time(e.at), "data": e.data,
        ]
    }
}
