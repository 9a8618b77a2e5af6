import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// The outbox, webhook subscriptions and deliveries.
extension SQLiteStore {
    static func insertOutbox(_ db: Database, _ events: [OutboxEvent]) throws {
        for e in events {
            try db.run(
                sql: "INSERT INTO outbox (id, tenant_id, type, at, correlation_id, payload) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [e.id, e.tenantID, e.type, SQLiteCoding.ms(e.at), e.correlationID, SQLiteCoding.text(e.payload)]
            )
        }
    }

    static func outboxEvent(_ row: Row) throws -> OutboxEvent {
        OutboxEvent(
            id: row["id"],
            tenantID: row["tenant_id"],
            type: row["type"],
            at: SQLiteCoding.date(row["at"] as Int64),
            correlationID: row["correlation_id"],
            payload: try SQLiteCoding.json(row["payload"]) ?? .null,
            seq: row["seq"]
        )
    }

    public func outboxPending(limit: Int) async throws -> [OutboxEvent] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM outbox WHERE seq IS NULL ORDER BY id LIMIT ?", arguments: [limit]).map(Self.outboxEvent)
        }
    }

    public func outboxDispatch(_ events: [OutboxEvent], deliveries: [WebhookDelivery]) async throws {
        try await pool.write { db in
            // The stream's last number is one row (outbox_head), not a scan of the outbox for its maximum.
            var next = (try Int64.fetchOne(db, sql: "SELECT seq FROM outbox_head WHERE id = 1") ?? 0) + 1
            for e in events {
                try db.run(sql: "UPDATE outbox SET seq = ? WHERE id = ? AND seq IS NULL", arguments: [next, e.id])
                if db.changesCount > 0 { next += 1 }
            }
            try db.run(sql: "UPDATE outbox_head SET seq = ? WHERE id = 1", arguments: [next - 1])
            for d in deliveries {
                try db.run(
                    sql: """
                        INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event_id, event_type, body, status, attempts,
                            next_attempt_at, last_status_code, last_error, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                        """,
                    arguments: [
                        d.id, d.tenantID, d.subscriptionID, d.eventID, d.eventType, d.body, d.status.rawValue, d.attempts,
                        SQLiteCoding.ms(d.nextAttemptAt), d.lastStatusCode, d.lastError, SQLiteCoding.ms(d.createdAt), SQLiteCoding.ms(d.updatedAt),
                    ]
                )
            }
        }
    }

    public func eventsAfter(tenantID: String, afterSeq: Int64, limit: Int) async throws -> [OutboxEvent] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM outbox WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [tenantID, afterSeq, limit]
            ).map(Self.outboxEvent)
        }
    }

    public func eventsHead(tenantID: String) async throws -> Int64 {
        try await pool.read { db in
            try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM outbox WHERE tenant_id = ? AND seq IS NOT NULL", arguments: [tenantID]) ?? 0
        }
    }

    public func outboxPurge(before: Date) async throws -> Int {
        try await pool.write { db in
            // Ids are time-ordered, so the primary key finds the old ones (no index of its own to keep up on every
            // write); the stream's number lives in outbox_head, so every old event may go.
            try db.run(sql: "DELETE FROM outbox WHERE id < ? AND seq IS NOT NULL", arguments: [RecordID.make(now: before)])
            return db.changesCount
        }
    }

    // MARK: subscriptions

    static func subscriptionArguments(_ s: WebhookSubscription) -> StatementArguments {
        [
            s.tenantID, s.id, s.url, SQLiteCoding.text(.array(s.eventTypes.map(JSONValue.string))), s.secret, s.keyID, s.previousSecret,
            SQLiteCoding.ms(s.previousSecretExpiresAt), s.status.rawValue, s.disabledReason, s.description, SQLiteCoding.ms(s.createdAt),
            SQLiteCoding.ms(s.updatedAt), s.createdBy,
        ]
    }

    static func subscription(_ row: Row) throws -> WebhookSubscription {
        WebhookSubscription(
            tenantID: row["tenant_id"],
            id: row["id"],
            url: row["url"],
            eventTypes: (try SQLiteCoding.json(row["event_types"]))?.arrayValue?.compactMap(\.stringValue) ?? [],
            secret: row["secret"],
            keyID: row["key_id"],
            previousSecret: row["previous_secret"],
            previousSecretExpiresAt: SQLiteCoding.date(row["previous_secret_expires_at"] as Int64?),
            status: WebhookSubscription.Status(rawValue: row["status"]) ?? .disabled,
            disabledReason: row["disabled_reason"],
            description: row["description"],
            createdAt: SQLiteCoding.date(row["created_at"] as Int64),
            updatedAt: SQLiteCoding.date(row["updated_at"] as Int64),
            createdBy: row["created_by"]
        )
    }

    public func webhookInsert(_ s: WebhookSubscription, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM webhook_subscriptions WHERE tenant_id = ? AND id = ?", arguments: [s.tenantID, s.id]) != nil {
                return false
            }
            try Self.ensureRoom(
                db,
                "SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = ?",
                [s.tenantID],
                quota: quotas.webhooksPerTenant,
                "webhooks per tenant",
                flag: "--max-webhooks-per-tenant"
            )
            try db.run(
                sql: """
                    INSERT INTO webhook_subscriptions (tenant_id, id, url, event_types, secret, key_id, previous_secret,
                        previous_secret_expires_at, status, disabled_reason, description, created_at, updated_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: Self.subscriptionArguments(s)
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func webhookGet(tenantID: String, id: String) async throws -> WebhookSubscription? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM webhook_subscriptions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
                .map(Self.subscription)
        }
    }

    public func webhookList(tenantID: String) async throws -> [WebhookSubscription] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_subscriptions WHERE tenant_id = ? ORDER BY id", arguments: [tenantID])
                .map(Self.subscription)
        }
    }

    public func webhooksActive() async throws -> [WebhookSubscription] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM webhook_subscriptions WHERE status = 'active' ORDER BY tenant_id, id").map(Self.subscription)
        }
    }

    public func webhookUpdate(_ s: WebhookSubscription, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: """
                    UPDATE webhook_subscriptions SET url = ?, event_types = ?, secret = ?, key_id = ?, previous_secret = ?,
                        previous_secret_expires_at = ?, status = ?, disabled_reason = ?, description = ?, updated_at = ?
                    WHERE tenant_id = ? AND id = ?
                    """,
                arguments: [
                    s.url, SQLiteCoding.text(.array(s.eventTypes.map(JSONValue.string))), s.secret, s.keyID, s.previousSecret,
                    SQLiteCoding.ms(s.previousSecretExpiresAt), s.status.rawValue, s.disabledReason, s.description, SQLiteCoding.ms(s.updatedAt),
                    s.tenantID, s.id,
                ]
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func webhookRewrap(old: WebhookSubscription, keyID: String, secret: String, previousSecret: String?) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: """
                    UPDATE webhook_subscriptions SET secret = ?, key_id = ?, previous_secret = ?
                    WHERE tenant_id = ? AND id = ? AND secret = ? AND key_id IS ? AND previous_secret IS ?
                    """,
                arguments: [secret, keyID, previousSecret, old.tenantID, old.id, old.secret, old.keyID, old.previousSecret]
            )
            return db.changesCount > 0
        }
    }

    public func webhookDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM webhook_subscriptions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            guard db.changesCount > 0 else { return false }
            // Its pending deliveries go with it; finished ones stay as the log.
            try db.run(
                sql:
                    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = 'subscription deleted' WHERE tenant_id = ? AND subscription_id = ? AND status = 'pending'",
                arguments: [tenantID, id]
            )
            try Self.appendAudit(db, audit)
            return true
        }
    }

    // MARK: deliveries

    static func delivery(_ row: Row) -> WebhookDelivery {
        WebhookDelivery(
            id: row["id"],
            tenantID: row["tenant_id"],
            subscriptionID: row["subscription_id"],
            eventID: row["event_id"],
            eventType: row["event_type"],
            body: row["body"],
            status: WebhookDelivery.Status(rawValue: row["status"]) ?? .failed,
            attempts: row["attempts"],
            nextAttemptAt: SQLiteCoding.date(row["next_attempt_at"] as Int64?),
            lastStatusCode: row["last_status_code"],
            lastError: row["last_error"],
            createdAt: SQLiteCoding.date(row["created_at"] as Int64),
            updatedAt: SQLiteCoding.date(row["updated_at"] as Int64)
        )
    }

    public func deliveriesDue(before: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
                arguments: [SQLiteCoding.ms(before), limit]
            ).map(Self.delivery)
        }
    }

    public func deliveryRecord(_ a: WebhookAttempt, delivery d: WebhookDelivery, disable: (reason: String, at: Date)?) async throws {
        try await pool.write { db in
            try db.run(
                sql: """
                    INSERT OR REPLACE INTO webhook_attempts (delivery_id, n, at, status_code, latency_ms, error, response_excerpt)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [a.deliveryID, a.number, SQLiteCoding.ms(a.at), a.statusCode, a.latencyMs, a.error, a.responseExcerpt]
            )
            try db.run(
                sql: """
                    UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?,
                        updated_at = ? WHERE id = ?
                    """,
                arguments: [
                    d.status.rawValue, d.attempts, SQLiteCoding.ms(d.nextAttemptAt), d.lastStatusCode, d.lastError, SQLiteCoding.ms(d.updatedAt),
                    d.id,
                ]
            )
            if let disable {
                try db.run(
                    sql: "UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = ?, updated_at = ? WHERE tenant_id = ? AND id = ?",
                    arguments: [disable.reason, SQLiteCoding.ms(disable.at), d.tenantID, d.subscriptionID]
                )
                try db.run(
                    sql: """
                        UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = ?
                        WHERE tenant_id = ? AND subscription_id = ? AND status = 'pending'
                        """,
                    arguments: [disable.reason, d.tenantID, d.subscriptionID]
                )
            }
        }
    }

    public func deliveryList(_ f: DeliveryFilter) async throws -> [WebhookDelivery] {
        try await pool.read { db in
            var sql = "SELECT * FROM webhook_deliveries WHERE tenant_id = ?"
            var arguments: StatementArguments = [f.tenantID]
            if let s = f.subscriptionID {
                sql += " AND subscription_id = ?"
                arguments += [s]
            }
            if let status = f.status {
                sql += " AND status = ?"
                arguments += [status.rawValue]
            }
            if let before = f.before {
                sql += " AND id < ?"
                arguments += [before]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [f.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.delivery)
        }
    }

    public func deliveryGet(tenantID: String, id: String) async throws -> (WebhookDelivery, [WebhookAttempt])? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM webhook_deliveries WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            else { return nil }
            let attempts = try Row.fetchAll(db, sql: "SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY n", arguments: [id]).map { r in
                WebhookAttempt(
                    deliveryID: r["delivery_id"],
                    number: r["n"],
                    at: SQLiteCoding.date(r["at"] as Int64),
                    statusCode: r["status_code"],
                    latencyMs: r["latency_ms"],
                    error: r["error"],
                    responseExcerpt: r["response_excerpt"]
                )
            }
            return (Self.delivery(row), attempts)
        }
    }

    public func deliveryRedeliver(tenantID: String, ids: [String], at: Date, audit: [AuditRecord]) async throws -> Int {
        try await pool.write { db in
            var count = 0
            for id in ids {
                try db.run(
                    sql:
                        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND status <> 'pending'",
                    arguments: [SQLiteCoding.ms(at), SQLiteCoding.ms(at), tenantID, id]
                )
                count += db.changesCount
            }
            if count > 0 { try Self.appendAudit(db, audit) }
            return count
        }
    }
}

/// Message templates.
extension SQLiteStore {
    static func template(_ row: Row) -> MessageTemplate {
        MessageTemplate(
            tenantID: row["tenant_id"],
            name: row["name"],
            version: row["version"],
            subject: row["subject"],
            body: row["body"],
            description: row["description"],
            createdAt: SQLiteCoding.date(row["created_at"] as Int64),
            createdBy: row["created_by"]
        )
    }

    public func templateAdd(_ t: MessageTemplate, audit: [AuditRecord], quotas: StoreQuotas) async throws -> MessageTemplate {
        try await pool.write { db in
            var t = t
            let latest = try Int.fetchOne(
                db,
                sql: "SELECT MAX(version) FROM message_templates WHERE tenant_id = ? AND name = ?",
                arguments: [t.tenantID, t.name]
            )
            if let latest {
                if latest >= quotas.versionsPerTemplate {
                    throw StoreQuotas.exceeded("versions per template", quotas.versionsPerTemplate, flag: "--max-versions-per-template")
                }
            } else {
                try Self.ensureRoom(
                    db,
                    "SELECT count(DISTINCT name) FROM message_templates WHERE tenant_id = ?",
                    [t.tenantID],
                    quota: quotas.templatesPerTenant,
                    "templates per tenant",
                    flag: "--max-templates-per-tenant"
                )
            }
            t.version = (latest ?? 0) + 1
            try db.run(
                sql: """
                    INSERT INTO message_templates (tenant_id, name, version, subject, body, description, created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [t.tenantID, t.name, t.version, t.subject, t.body, t.description, SQLiteCoding.ms(t.createdAt), t.createdBy]
            )
            try Self.appendAudit(
                db,
                audit.map {
                    var a = $0
                    a.details = .object((a.details.objectValue ?? [:]).merging(["version": .number(Double(t.version))]) { $1 })
                    return a
                }
            )
            return t
        }
    }

    public func templateGet(tenantID: String, name: String, version: Int?) async throws -> MessageTemplate? {
        try await pool.read { db in
            try Row.fetchOne(
                db,
                sql: version == nil
                    ? "SELECT * FROM message_templates WHERE tenant_id = ? AND name = ? ORDER BY version DESC LIMIT 1"
                    : "SELECT * FROM message_templates WHERE tenant_id = ? AND name = ? AND version = ?",
                arguments: version == nil ? [tenantID, name] : [tenantID, name, version]
            ).map(Self.template)
        }
    }

    public func templateList(tenantID: String, after: String?, limit: Int) async throws -> [MessageTemplate] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT t.* FROM message_templates t
                    WHERE t.tenant_id = ? AND t.name > ?
                    AND t.version = (SELECT MAX(version) FROM message_templates u WHERE u.tenant_id = t.tenant_id AND u.name = t.name)
                    ORDER BY t.name LIMIT ?
                    """,
                arguments: [tenantID, after ?? "", limit]
            ).map(Self.template)
        }
    }
}
