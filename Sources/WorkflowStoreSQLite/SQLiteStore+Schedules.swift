import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Schedules and the runs they start.
extension SQLiteStore {
    static let scheduleColumns = "tenant_id, id, spec, state, paused, note, next_wake_at, revision, created_at, updated_at, created_by"

    public func scheduleInsert(_ s: ScheduleRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM schedules WHERE tenant_id = ? AND id = ?", arguments: [s.tenantID, s.id]) != nil {
                return false
            }
            try Self.ensureRoom(
                db,
                "SELECT count(*) FROM schedules WHERE tenant_id = ?",
                [s.tenantID],
                quota: quotas.schedulesPerTenant,
                "schedules per tenant",
                flag: "--max-schedules-per-tenant"
            )
            try db.execute(
                sql: "INSERT INTO schedules (\(Self.scheduleColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                arguments: Self.arguments(s)
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func scheduleGet(tenantID: String, id: String) async throws -> ScheduleRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.scheduleColumns) FROM schedules WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
                .map(Self.schedule)
        }
    }

    public func scheduleList(tenantID: String, after: String?, limit: Int) async throws -> [ScheduleRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT \(Self.scheduleColumns) FROM schedules WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT ?",
                arguments: [tenantID, after ?? "", limit]
            ).map(Self.schedule)
        }
    }

    public func scheduleUpdate(_ s: ScheduleRecord, expectedRevision: Int, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            guard try Self.update(db, s, expectedRevision: expectedRevision) else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    static func update(_ db: Database, _ s: ScheduleRecord, expectedRevision: Int) throws -> Bool {
        try db.execute(
            sql: """
                UPDATE schedules SET spec = ?, state = ?, paused = ?, note = ?, next_wake_at = ?, revision = ?, updated_at = ?
                WHERE tenant_id = ? AND id = ? AND revision = ?
                """,
            arguments: [
                SQLiteCoding.text(s.spec), SQLiteCoding.text(s.state.json), s.paused ? 1 : 0, s.note, SQLiteCoding.ms(s.nextWakeAt),
                s.revision, SQLiteCoding.ms(s.updatedAt), s.tenantID, s.id, expectedRevision,
            ]
        )
        return db.changesCount > 0
    }

    public func scheduleDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.execute(sql: "DELETE FROM schedules WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            guard db.changesCount > 0 else { return false }
            try db.execute(sql: "DELETE FROM schedule_fires WHERE tenant_id = ? AND schedule_id = ?", arguments: [tenantID, id])
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func schedulesDue(before: Date, limit: Int) async throws -> [ScheduleRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.scheduleColumns) FROM schedules
                    WHERE paused = 0 AND next_wake_at IS NOT NULL AND next_wake_at <= ? ORDER BY next_wake_at LIMIT ?
                    """,
                arguments: [SQLiteCoding.ms(before), limit]
            ).map(Self.schedule)
        }
    }

    public func scheduleCountActive() async throws -> Int {
        try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM schedules WHERE paused = 0 AND next_wake_at IS NOT NULL") ?? 0
        }
    }

    public func scheduleFire(_ params: ScheduleFireParams, now: Date) async throws -> ScheduleFireOutcome {
        try await pool.write { db in
            let s = params.schedule
            guard try Self.update(db, s, expectedRevision: params.expectedRevision) else { return .conflict }
            var started: [(scheduledAt: Int64, runID: String, tasks: [TaskRecord])] = []
            var existing: [(scheduledAt: Int64, runID: String)] = []
            var audit = params.audit
            for start in params.starts {
                try db.execute(
                    sql: """
                        INSERT INTO schedule_fires (tenant_id, schedule_id, scheduled_at, run_id, fired_at) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT DO NOTHING
                        """,
                    arguments: [s.tenantID, s.id, start.scheduledAt, start.run.run.id, SQLiteCoding.ms(now)]
                )
                if db.changesCount == 0 {
                    let runID =
                        try String.fetchOne(
                            db,
                            sql: "SELECT run_id FROM schedule_fires WHERE tenant_id = ? AND schedule_id = ? AND scheduled_at = ?",
                            arguments: [s.tenantID, s.id, start.scheduledAt]
                        ) ?? ""
                    existing.append((start.scheduledAt, runID))
                    continue
                }
                var p = start.run
                audit += p.initial.audit
                p.initial.audit = []
                started.append((start.scheduledAt, p.run.id, try Self.insert(db, p, now: now)))
            }
            try Self.appendAudit(db, audit)
            try Self.insertOutbox(
                db,
                started.map { fire in
                    OutboxEvent.scheduleFired(
                        tenantID: s.tenantID,
                        scheduleID: s.id,
                        scheduledAt: fire.scheduledAt,
                        runID: fire.runID,
                        workflow: params.starts.first { $0.run.run.id == fire.runID }?.run.run.workflowName ?? "",
                        at: now
                    )
                }
            )
            return .applied(started: started, existing: existing)
        }
    }

    public func scheduleFires(tenantID: String, scheduleID: String, before: Int64?, limit: Int) async throws -> [ScheduleFireRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT schedule_id, scheduled_at, run_id, fired_at FROM schedule_fires
                    WHERE tenant_id = ? AND schedule_id = ? AND scheduled_at < ? ORDER BY scheduled_at DESC LIMIT ?
                    """,
                arguments: [tenantID, scheduleID, before ?? Int64.max, limit]
            ).map { row in
                ScheduleFireRecord(
                    scheduleID: row[0],
                    scheduledAt: row[1],
                    runID: row[2],
                    firedAt: SQLiteCoding.date(row[3] as Int64)
                )
            }
        }
    }

    static func arguments(_ s: ScheduleRecord) -> StatementArguments {
        [
            s.tenantID, s.id, SQLiteCoding.text(s.spec), SQLiteCoding.text(s.state.json), s.paused ? 1 : 0, s.note,
            SQLiteCoding.ms(s.nextWakeAt), s.revision, SQLiteCoding.ms(s.createdAt), SQLiteCoding.ms(s.updatedAt), s.createdBy,
        ]
    }

    static func schedule(_ row: Row) throws -> ScheduleRecord {
        ScheduleRecord(
            tenantID: row[0],
            id: row[1],
            spec: try SQLiteCoding.json(row[2]) ?? .null,
            state: ScheduleState(json: try SQLiteCoding.json(row[3]) ?? .null),
            paused: (row[4] as Int64) != 0,
            note: row[5],
            nextWakeAt: SQLiteCoding.date(row[6] as Int64?),
            revision: row[7],
            createdAt: SQLiteCoding.date(row[8] as Int64),
            updatedAt: SQLiteCoding.date(row[9] as Int64),
            createdBy: row[10]
        )
    }
}
