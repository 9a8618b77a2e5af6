import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Schedules and the runs they start.
extension PostgresStore {
    static let scheduleColumns = "tenant_id, id, spec, state, paused, note, next_wake_at, revision, created_at, updated_at, created_by"

    public func scheduleInsert(_ s: ScheduleRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await self.ensureRoom(
                conn,
                scope: "schedules/" + s.tenantID,
                count: "SELECT count(*) FROM schedules WHERE tenant_id = \(s.tenantID) AND id <> \(s.id)",
                quota: quotas.schedulesPerTenant,
                "schedules per tenant",
                flag: "--max-schedules-per-tenant",
                logger: logger
            )
            return try await conn.query(
                """
                INSERT INTO schedules (\(unescaped: Self.scheduleColumns))
                VALUES (\(s.tenantID), \(s.id), \(s.spec.canonicalString()), \(s.state.json.canonicalString()), \(s.paused), \(s.note),
                    \(s.nextWakeAt), \(s.revision), \(s.createdAt), \(s.updatedAt), \(s.createdBy))
                ON CONFLICT DO NOTHING RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func scheduleGet(tenantID: String, id: String) async throws -> ScheduleRecord? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.scheduleColumns) FROM schedules WHERE tenant_id = \(tenantID) AND id = \(id)",
                logger: logger
            ).collect().first.map(Self.schedule)
        }
    }

    public func scheduleList(tenantID: String, after: String?, limit: Int) async throws -> [ScheduleRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.scheduleColumns) FROM schedules WHERE tenant_id = \(tenantID) AND id > \(after ?? "")
                ORDER BY id LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.schedule)
        }
    }

    public func scheduleUpdate(_ s: ScheduleRecord, expectedRevision: Int, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await Self.update(conn, s, expectedRevision: expectedRevision, logger: logger)
        }
    }

    static func update(_ conn: PostgresConnection, _ s: ScheduleRecord, expectedRevision: Int, logger: Logger) async throws -> Bool {
        try await conn.query(
            """
            UPDATE schedules SET spec = \(s.spec.canonicalString()), state = \(s.state.json.canonicalString()), paused = \(s.paused),
                note = \(s.note), next_wake_at = \(s.nextWakeAt), revision = \(s.revision), updated_at = \(s.updatedAt)
            WHERE tenant_id = \(s.tenantID) AND id = \(s.id) AND revision = \(expectedRevision)
            RETURNING id
            """,
            logger: logger
        ).collect().count > 0
    }

    public func scheduleDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            let deleted =
                try await conn.query("DELETE FROM schedules WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id", logger: logger)
                .collect().count > 0
            if deleted {
                try await conn.query("DELETE FROM schedule_fires WHERE tenant_id = \(tenantID) AND schedule_id = \(id)", logger: logger)
            }
            return deleted
        }
    }

    public func schedulesDue(before: Date, limit: Int) async throws -> [ScheduleRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.scheduleColumns) FROM schedules
                WHERE NOT paused AND next_wake_at IS NOT NULL AND next_wake_at <= \(before) ORDER BY next_wake_at LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.schedule)
        }
    }

    public func scheduleCountActive() async throws -> Int {
        try await guarded { [self] in
            try await client.query("SELECT COUNT(*)::BIGINT FROM schedules WHERE NOT paused AND next_wake_at IS NOT NULL", logger: logger)
                .collect().first.map { Int(try $0.decode(Int64.self)) } ?? 0
        }
    }

    public func scheduleFire(_ params: ScheduleFireParams, now: Date) async throws -> ScheduleFireOutcome {
        try await guarded(timeout: timeout(forRuns: params.starts.reduce(params.starts.count) { $0 + $1.run.initial.spawnedRuns })) { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let s = params.schedule
                guard try await Self.update(conn, s, expectedRevision: params.expectedRevision, logger: logger) else { return .conflict }
                var existing: [(scheduledAt: Int64, runID: String)] = []
                var writer = PostgresBatchWriter()
                var owners: [(index: Int, scheduledAt: Int64, runID: String)] = []
                for (index, start) in params.starts.enumerated() {
                    let inserted =
                        try await conn.query(
                            """
                            INSERT INTO schedule_fires (tenant_id, schedule_id, scheduled_at, run_id, fired_at)
                            VALUES (\(s.tenantID), \(s.id), \(start.scheduledAt), \(start.run.run.id), \(now))
                            ON CONFLICT DO NOTHING RETURNING run_id
                            """,
                            logger: logger
                        ).collect().count > 0
                    if !inserted {
                        let runID = try await conn.query(
                            """
                            SELECT run_id FROM schedule_fires
                            WHERE tenant_id = \(s.tenantID) AND schedule_id = \(s.id) AND scheduled_at = \(start.scheduledAt)
                            """,
                            logger: logger
                        ).collect().first?.decode(String.self)
                        existing.append((start.scheduledAt, runID ?? ""))
                        continue
                    }
                    writer.insert(start.run, owner: index, now: now)
                    owners.append((index, start.scheduledAt, start.run.run.id))
                }
                let inserted = try await writer.flush(conn, now: now, logger: logger)
                try await Self.appendAudit(conn, params.audit, logger: logger)
                try await Self.insertOutbox(
                    conn,
                    owners.map { fire in
                        OutboxEvent.scheduleFired(
                            tenantID: s.tenantID,
                            scheduleID: s.id,
                            scheduledAt: fire.scheduledAt,
                            runID: fire.runID,
                            workflow: params.starts[fire.index].run.run.workflowName,
                            at: now
                        )
                    },
                    logger: logger
                )
                if writer.announce { try await notify(conn) }
                return .applied(started: owners.map { ($0.scheduledAt, $0.runID, inserted[$0.index] ?? []) }, existing: existing)
            }
        }
    }

    public func scheduleFires(tenantID: String, scheduleID: String, before: Int64?, limit: Int) async throws -> [ScheduleFireRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT schedule_id, scheduled_at, run_id, fired_at FROM schedule_fires
                WHERE tenant_id = \(tenantID) AND schedule_id = \(scheduleID) AND scheduled_at < \(before ?? Int64.max)
                ORDER BY scheduled_at DESC LIMIT \(limit)
                """,
                logger: logger
            ).collect().map { row in
                let (id, at, runID, firedAt) = try row.decode((String, Int64, String, Date).self)
                return ScheduleFireRecord(scheduleID: id, scheduledAt: at, runID: runID, firedAt: firedAt)
            }
        }
    }

    static func schedule(_ row: PostgresRow) throws -> ScheduleRecord {
        let (tenant, id, spec, state, paused, note, wake, revision, created, updated, by) = try row.decode(
            (String, String, String, String, Bool, String?, Date?, Int64, Date, Date, String?).self
        )
        return ScheduleRecord(
            tenantID: tenant,
            id: id,
            spec: try Self.json(spec) ?? .null,
            state: ScheduleState(json: try Self.json(state) ?? .null),
            paused: paused,
            note: note,
            nextWakeAt: wake,
            revision: Int(revision),
            createdAt: created,
            updatedAt: updated,
            createdBy: by
        )
    }
}
