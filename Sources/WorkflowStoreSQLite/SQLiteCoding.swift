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
            id: row["id"],
            tenantID: row["tenant_id"],
            name: row["name"],
            version: row["version"],
            description: row["description"],
            spec: try json(row["definition"]) ?? .null,
            checksum: row["checksum"],
            createdBy: row["created_by"],
            createdAt: date(row["created_at"] as Int64),
            // A status this version does not know starts nothing.
            status: DefinitionStatus(rawValue: row["status"] ?? "active") ?? .retired,
            approvals: DefinitionApproval.decode(try json(row["approvals"]))
        )
    }

    // Runs, steps and tasks are read by column position from these lists, not by name: GRDB looks a name up by
    // lowercasing it, which was a tenth of the server's CPU in the fanout10 benchmark. Every query that maps rows
    // with `run`, `step` or `task` selects exactly these columns, in this order.

    static let runColumns = """
        id, tenant_id, definition_id, workflow_name, workflow_version, status, input, output, error, idempotency_key, \
        request_hash, parent_run_id, parent_step_id, item_index, body_path, compensated, signals, dead_letter, root_run_id, \
        key_generations, priority, created_at, started_at, completed_at, updated_at, next_event_seq, created_by, trace_parent
        """
    /// The position of `next_event_seq` in `runColumns`.
    static let runNextEventSeq = 25

    /// With `inputs`, a large input parsed before is reused (a run's input never changes).
    static func run(_ row: Row, inputs: RunInputCache? = nil) throws -> RunRecord {
        let id: String = row[0]
        let input: JSONValue
        if let inputs, let text = row[6] as String? {
            input = try inputs.input(runID: id, text: text)
        } else {
            input = try json(row[6]) ?? .null
        }
        var run = RunRecord(
            id: id,
            tenantID: row[1],
            definitionID: row[2],
            workflowName: row[3],
            workflowVersion: row[4],
            status: RunStatus(rawValue: row[5]) ?? .failed,
            input: input,
            output: try json(row[7]),
            error: try json(row[8]),
            idempotencyKey: row[9],
            requestHash: row[10],
            parentRunID: row[11],
            parentStepID: row[12],
            itemIndex: row[13],
            bodyPath: row[14],
            compensated: (row[15] as Int64?).map { $0 != 0 },
            pendingSignals: PendingSignal.decode(try json(row[16])),
            deadLetter: (row[17] as Int64? ?? 0) != 0,
            rootRunID: row[18],
            keyGenerations: RunRecord.decodeGenerations(try json(row[19])),
            createdBy: row[26],
            priority: row[20],
            createdAt: date(row[21] as Int64),
            startedAt: date(row[22] as Int64?),
            completedAt: date(row[23] as Int64?),
            updatedAt: date(row[24] as Int64)
        )
        run.traceParent = row[27]
        return run
    }

    static let stepColumns = "run_id, step_id, status, attempt, input, output, error, state, started_at, completed_at, updated_at"

    static func step(_ row: Row) throws -> StepRunRecord {
        StepRunRecord(
            runID: row[0],
            stepID: row[1],
            status: StepStatus(rawValue: row[2]) ?? .failed,
            attempt: row[3],
            input: try json(row[4]),
            output: try json(row[5]),
            error: try json(row[6]),
            state: StepState(json: try json(row[7])),
            startedAt: date(row[8] as Int64?),
            completedAt: date(row[9] as Int64?),
            updatedAt: date(row[10] as Int64)
        )
    }

    static func event(_ row: Row) throws -> RunEventRecord {
        RunEventRecord(
            runID: row["run_id"],
            seq: row["seq"],
            type: row["type"],
            stepID: row["step_id"],
            data: try json(row["data"]) ?? .null,
            at: date(row["at"] as Int64)
        )
    }

    static let taskColumns = "id, tenant_id, run_id, step_id, kind, available_at, priority, lease_owner, lease_expires_at, lease_token"

    static func task(_ row: Row) -> TaskRecord {
        TaskRecord(
            id: row[0],
            tenantID: row[1],
            runID: row[2],
            stepID: row[3],
            kind: TaskKind(rawValue: row[4]) ?? .step,
            availableAt: date(row[5] as Int64),
            priority: row[6],
            leaseOwner: row[7],
            leaseExpiresAt: date(row[8] as Int64?),
            leaseToken: row[9]
        )
    }
}
