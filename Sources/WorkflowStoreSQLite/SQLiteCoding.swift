import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Row mapping: JSON as TEXT, times as integer milliseconds since 1970.
enum SQLiteCoding {
    /// Saturates instead of trapping: no date, however it was computed, may crash the process (the engine bounds
    /// every duration long before this matters; this is the last line).
    static func ms(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1000).rounded()
        guard value.isFinite else { return value > 0 ? maxMs : -maxMs }
        return Int64(max(-Double(maxMs), min(Double(maxMs), value)))
    }

    /// About 285,000 years either side of 1970: within Int64, Double and PostgreSQL's timestamp range.
    static let maxMs: Int64 = 1 << 53
    static func ms(_ date: Date?) -> Int64? { date.map(ms) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
    static func date(_ ms: Int64?) -> Date? { ms.map(date) }

    static func text(_ value: JSONValue) -> String { value.canonicalString() }
    static func text(_ value: JSONValue?) -> String? { value.map(text) }

    static func json(_ text: String?) throws -> JSONValue? {
        guard let text else { return nil }
        return try JSONValue.parse(text)
    }

    static func definition(_ row: Row) throws -> DefinitionRecord {
        DefinitionRecord(
            id: row["id"], tenantID: row["tenant_id"], name: row["name"], version: row["version"],
            description: row["description"], spec: try json(row["definition"]) ?? .null, checksum: row["checksum"],
            createdBy: row["created_by"], createdAt: date(row["created_at"] as Int64),
            status: DefinitionStatus(rawValue: row["status"] ?? "active") ?? .active)
    }

    /// With `inputs`, a large input parsed before is reused (a run's input never changes).
    static func run(_ row: Row, inputs: RunInputCache? = nil) throws -> RunRecord {
        let id: String = row["id"]
        let input: JSONValue
        if let inputs, let text = row["input"] as String? {
            input = try inputs.input(runID: id, text: text)
        } else {
            input = try json(row["input"]) ?? .null
        }
        return RunRecord(
            id: id, tenantID: row["tenant_id"], definitionID: row["definition_id"],
            workflowName: row["workflow_name"], workflowVersion: row["workflow_version"],
            status: RunStatus(rawValue: row["status"]) ?? .failed, input: input,
            output: try json(row["output"]), error: try json(row["error"]), idempotencyKey: row["idempotency_key"],
            requestHash: row["request_hash"], parentRunID: row["parent_run_id"], parentStepID: row["parent_step_id"],
            itemIndex: row["item_index"], bodyPath: row["body_path"], compensated: (row["compensated"] as Int64?).map { $0 != 0 },
            pendingSignals: PendingSignal.decode(try json(row["signals"])), deadLetter: (row["dead_letter"] as Int64? ?? 0) != 0,
            rootRunID: row["root_run_id"], keyGenerations: RunRecord.decodeGenerations(try json(row["key_generations"])),
            priority: row["priority"], createdAt: date(row["created_at"] as Int64),
            startedAt: date(row["started_at"] as Int64?), completedAt: date(row["completed_at"] as Int64?),
            updatedAt: date(row["updated_at"] as Int64))
    }

    static func step(_ row: Row) throws -> StepRunRecord {
        StepRunRecord(
            runID: row["run_id"], stepID: row["step_id"], status: StepStatus(rawValue: row["status"]) ?? .failed,
            attempt: row["attempt"], input: try json(row["input"]), output: try json(row["output"]),
            error: try json(row["error"]), state: try json(row["state"]), startedAt: date(row["started_at"] as Int64?),
            completedAt: date(row["completed_at"] as Int64?), updatedAt: date(row["updated_at"] as Int64))
    }

    static func event(_ row: Row) throws -> RunEventRecord {
        RunEventRecord(
            runID: row["run_id"], seq: row["seq"], type: row["type"], stepID: row["step_id"],
            data: try json(row["data"]) ?? .null, at: date(row["at"] as Int64))
    }

    static func task(_ row: Row) -> TaskRecord {
        TaskRecord(
            id: row["id"], tenantID: row["tenant_id"], runID: row["run_id"], stepID: row["step_id"],
            kind: TaskKind(rawValue: row["kind"]) ?? .step, availableAt: date(row["available_at"] as Int64),
            priority: row["priority"], leaseOwner: row["lease_owner"], leaseExpiresAt: date(row["lease_expires_at"] as Int64?),
            leaseToken: row["lease_token"])
    }
}
