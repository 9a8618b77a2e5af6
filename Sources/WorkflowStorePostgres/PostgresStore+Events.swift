import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// The outbox, webhook subscriptions and deliveries.
extension PostgresStore {
    static func insertOutbox(_ conn: PostgresConnection, _ events: [OutboxEvent], logger: Logger) async throws {
        guard !events.isEmpty else { return }
        try await conn.query(
            """
            INSERT INTO outbox (id, tenant_id, type, at, correlation_id, payload)
            SELECT id, tenant, type, to_timestamp(at), NULLIF(correlation, ''), payload
            FROM UNNEST(\(events.map(\.id))::text[], \(events.map(\.tenantID))::text[], \(events.map(\.type))::text[],
                \(events.map { $0.at.timeIntervalSince1970 })::float8[], \(events.map { $0.correlationID ?? "" })::text[],
                \(events.map { $0.payload.canonicalString() })::text[]) AS e(id, tenant, type, at, correlation, payload)
            """,
            logger: logger
        )
    }

    static let outboxColumns = "id, tenant_id, type, at, correlation_id, payload, seq"

    static func outboxEvent(_ row: PostgresRow) throws -> OutboxEvent {
        let (id, tenant, type, at, correlation, payload, seq) = try row.decode((String, String, String, Date, String?, String, Int64?).self)
        return OutboxEvent(id: id, tenantID: tenant, type: type, at: at, correlationID: correlation, payload: try json(payload) ?? .null, seq: seq)
    }

    public func outboxPending(limit: Int) async throws -> [OutboxEvent] {
        try await guarded { [self] in
            try await client.query("SELECT \(unescaped: Self.outboxColumns) FROM outbox WHERE seq IS NULL ORDER BY id LIMIT \(limit)", logger: logger)
                .collect().map(Self.outboxEvent)
        }
    }

    public func outboxDispatch(_ events: [OutboxEvent], deliveries d: [WebhookDelivery]) async throws {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                // One dispatcher numbers the stream at a time (the leader; the lock covers a handover).
                try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(configuration.schema + "/outbox")))", logger: logger)
                if !events.isEmpty {
                    // Numbered after the stream's last number (one row, outbox_head): no scan of the outbox.
                    let numbered =
                        try await conn.query(
                            """
                            WITH base AS (SELECT seq AS s FROM outbox_head WHERE id = 1 FOR UPDATE),
                            numbered AS (
                                UPDATE outbox o SET seq = base.s + e.n
                                FROM base, UNNEST(\(events.map(\.id))::text[]) WITH ORDINALITY AS e(id, n)
                                WHERE o.id = e.id AND o.seq IS NULL
                                RETURNING o.seq
                            )
                            SELECT COALESCE(MAX(seq), 0)::BIGINT FROM numbered
                            """,
                            logger: logger
                        ).collect().first?.decode(Int64.self) ?? 0
                    if numbered > 0 {
                        try await conn.query("UPDATE outbox_head SET seq = GREATEST(seq, \(numbered)) WHERE id = 1", logger: logger)
                    }
                }
                guard !d.isEmpty else { return }
                try await conn.query(
                    """
                    INSERT INTO webhook_deliveries (id, tenant_id, subscription_id, event_id, event_type, body, status, attempts,
                        next_attempt_at, created_at, updated_at)
                    SELECT id, tenant, sub, event, type, body, 'pending', 0, to_timestamp(next), to_timestamp(created), to_timestamp(created)
                    FROM UNNEST(\(d.map(\.id))::text[], \(d.map(\.tenantID))::text[], \(d.map(\.subscriptionID))::text[],
                        \(d.map(\.eventID))::text[], \(d.map(\.eventType))::text[], \(d.map(\.body))::text[],
                        \(d.map { ($0.nextAttemptAt ?? $0.createdAt).timeIntervalSince1970 })::float8[],
                        \(d.map { $0.createdAt.timeIntervalSince1970 })::float8[]) AS x(id, tenant, sub, event, type, body, next, created)
                    ON CONFLICT DO NOTHING
                    """,
                    logger: logger
                )
            }
        }
    }

    public func eventsAfter(tenantID: String, afterSeq: Int64, limit: Int) async throws -> [OutboxEvent] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.outboxColumns) FROM outbox WHERE tenant_id = \(tenantID) AND seq > \(afterSeq)
                ORDER BY seq LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.outboxEvent)
        }
    }

    public func eventsHead(tenantID: String) async throws -> Int64 {
        try await guarded { [self] in
            try await client.query(
                "SELECT COALESCE(MAX(seq), 0)::BIGINT FROM outbox WHERE tenant_id = \(tenantID) AND seq IS NOT NULL",
                logger: logger
            )
            .collect().first?.decode(Int64.self) ?? 0
        }
    }

    public func outboxPurge(before: Date) async throws -> Int {
        try await guarded { [self] in
            try await client.query(
                """
                WITH gone AS (
                    DELETE FROM outbox WHERE id < \(RecordID.make(now: before)) AND seq IS NOT NULL RETURNING 1
                ) SELECT COUNT(*)::BIGINT FROM gone
                """,
                logger: logger
            ).collect().first.map { Int(try $0.decode(Int64.self)) } ?? 0
        }
    }

    // MARK: subscriptions

    static let subscriptionColumns = """
        tenant_id, id, url, event_types, secret, key_id, previous_secret, previous_secret_expires_at, status, disabled_reason, \
        description, created_at, updated_at, created_by
        """

    static func subscription(_ row: PostgresRow) throws -> WebhookSubscription {
        let r = row.makeRandomAccess()
        return WebhookSubscription(
            tenantID: try r[0].decode(String.self),
            id: try r[1].decode(String.self),
            url: try r[2].decode(String.self),
            eventTypes: (try json(try r[3].decode(String.self)))?.arrayValue?.compactMap(\.stringValue) ?? [],
            secret: try r[4].decode(String.self),
            keyID: try r[5].decode(String?.self),
            previousSecret: try r[6].decode(String?.self),
            previousSecretExpiresAt: try r[7].decode(Date?.self),
            status: WebhookSubscription.Status(rawValue: try r[8].decode(String.self)) ?? .disabled,
            disabledReason: try r[9].decode(String?.self),
            description: try r[10].decode(String?.self),
            createdAt: try r[11].decode(Date.self),
            updatedAt: try r[12].decode(Date.self),
            createdBy: try r[13].decode(String?.self)
        )
    }

    public func webhookInsert(_ s: WebhookSubscription, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        let types = JSONValue.array(s.eventTypes.map(JSONValue.string)).canonicalString()
        return try await audited(audit) { [self] conn in
            try await self.ensureRoom(
                conn,
                scope: "webhooks/" + s.tenantID,
                count: "SELECT count(*) FROM webhook_subscriptions WHERE tenant_id = \(s.tenantID) AND id <> \(s.id)",
                quota: quotas.webhooksPerTenant,
                "webhooks per tenant",
                flag: "--max-webhooks-per-tenant",
                logger: logger
            )
            return try await conn.query(
                """
                INSERT INTO webhook_subscriptions (\(unescaped: Self.subscriptionColumns))
                VALUES (\(s.tenantID), \(s.id), \(s.url), \(types), \(s.secret), \(s.keyID), \(s.previousSecret), \(s.previousSecretExpiresAt),
                    \(s.status.rawValue), \(s.disabledReason), \(s.description), \(s.createdAt), \(s.updatedAt), \(s.createdBy))
                ON CONFLICT DO NOTHING RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func webhookGet(tenantID: String, id: String) async throws -> WebhookSubscription? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscriptions WHERE tenant_id = \(tenantID) AND id = \(id)",
                logger: logger
            ).collect().first.map(Self.subscription)
        }
    }

    public func webhookList(tenantID: String) async throws -> [WebhookSubscription] {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscriptions WHERE tenant_id = \(tenantID) ORDER BY id",
                logger: logger
            ).collect().map(Self.subscription)
        }
    }

    public func webhooksActive() async throws -> [WebhookSubscription] {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.subscriptionColumns) FROM webhook_subscriptions WHERE status = 'active' ORDER BY tenant_id, id",
                logger: logger
            ).collect().map(Self.subscription)
        }
    }

    public func webhookUpdate(_ s: WebhookSubscription, audit: [AuditRecord]) async throws -> Bool {
        let types = JSONValue.array(s.eventTypes.map(JSONValue.string)).canonicalString()
        return try await audited(audit) { [self] conn in
            try await conn.query(
                """
                UPDATE webhook_subscriptions SET url = \(s.url), event_types = \(types), secret = \(s.secret), key_id = \(s.keyID),
                    previous_secret = \(s.previousSecret), previous_secret_expires_at = \(s.previousSecretExpiresAt), status = \(s.status.rawValue),
                    disabled_reason = \(s.disabledReason), description = \(s.description), updated_at = \(s.updatedAt)
                WHERE tenant_id = \(s.tenantID) AND id = \(s.id) RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func webhookRewrap(old: WebhookSubscription, keyID: String, secret: String, previousSecret: String?) async throws -> Bool {
        try await guarded { [self] in
            try await client.query(
                """
                UPDATE webhook_subscriptions SET secret = \(secret), key_id = \(keyID), previous_secret = \(previousSecret)
                WHERE tenant_id = \(old.tenantID) AND id = \(old.id) AND secret = \(old.secret)
                    AND key_id IS NOT DISTINCT FROM \(old.keyID) AND previous_secret IS NOT DISTINCT FROM \(old.previousSecret)
                RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func webhookDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            let deleted =
                try await conn.query(
                    "DELETE FROM webhook_subscriptions WHERE tenant_id = \(tenantID) AND id = \(id) RETURNING id",
                    logger: logger
                ).collect().count > 0
            if deleted {
                try await conn.query(
                    """
                    UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = 'subscription deleted'
                    WHERE tenant_id = \(tenantID) AND subscription_id = \(id) AND status = 'pending'
                    """,
                    logger: logger
                )
            }
            return deleted
        }
    }

    // MARK: deliveries

    static let deliveryColumns = """
        id, tenant_id, subscription_id, event_id, event_type, body, status, attempts, next_attempt_at, last_status_code, last_error, \
        created_at, updated_at
        """

    static func delivery(_ row: PostgresRow) throws -> WebhookDelivery {
        let r = row.makeRandomAccess()
        return WebhookDelivery(
            id: try r[0].decode(String.self),
            tenantID: try r[1].decode(String.self),
            subscriptionID: try r[2].decode(String.self),
            eventID: try r[3].decode(String.self),
            eventType: try r[4].decode(String.self),
            body: try r[5].decode(String.self),
            status: WebhookDelivery.Status(rawValue: try r[6].decode(String.self)) ?? .failed,
            attempts: Int(try r[7].decode(Int32.self)),
            nextAttemptAt: try r[8].decode(Date?.self),
            lastStatusCode: try r[9].decode(Int32?.self).map(Int.init),
            lastError: try r[10].decode(String?.self),
            createdAt: try r[11].decode(Date.self),
            updatedAt: try r[12].decode(Date.self)
        )
    }

    public func deliveriesDue(before: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= \(before) ORDER BY next_attempt_at, id LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.delivery)
        }
    }

    public func deliveryRecord(_ a: WebhookAttempt, delivery d: WebhookDelivery, disable: (reason: String, at: Date)?) async throws {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                try await conn.query(
                    """
                    INSERT INTO webhook_attempts (delivery_id, n, at, status_code, latency_ms, error, response_excerpt)
                    VALUES (\(a.deliveryID), \(a.number), \(a.at), \(a.statusCode.map(Int32.init)), \(Int32(clamping: a.latencyMs)), \(a.error),
                        \(a.responseExcerpt))
                    ON CONFLICT (delivery_id, n) DO UPDATE SET at = EXCLUDED.at, status_code = EXCLUDED.status_code,
                        latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error, response_excerpt = EXCLUDED.response_excerpt
                    """,
                    logger: logger
                )
                try await conn.query(
                    """
                    UPDATE webhook_deliveries SET status = \(d.status.rawValue), attempts = \(Int32(d.attempts)), next_attempt_at = \(d.nextAttemptAt),
                        last_status_code = \(d.lastStatusCode.map(Int32.init)), last_error = \(d.lastError), updated_at = \(d.updatedAt)
                    WHERE id = \(d.id)
                    """,
                    logger: logger
                )
                if let disable {
                    try await conn.query(
                        """
                        UPDATE webhook_subscriptions SET status = 'disabled', disabled_reason = \(disable.reason), updated_at = \(disable.at)
                        WHERE tenant_id = \(d.tenantID) AND id = \(d.subscriptionID)
                        """,
                        logger: logger
                    )
                    try await conn.query(
                        """
                        UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = \(disable.reason)
                        WHERE tenant_id = \(d.tenantID) AND subscription_id = \(d.subscriptionID) AND status = 'pending'
                        """,
                        logger: logger
                    )
                }
            }
        }
    }

    public func deliveryList(_ f: DeliveryFilter) async throws -> [WebhookDelivery] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries
                WHERE tenant_id = \(f.tenantID) AND (\(f.subscriptionID)::text IS NULL OR subscription_id = \(f.subscriptionID))
                    AND (\(f.status?.rawValue)::text IS NULL OR status = \(f.status?.rawValue)) AND (\(f.before)::text IS NULL OR id < \(f.before))
                ORDER BY id DESC LIMIT \(f.limit)
                """,
                logger: logger
            ).collect().map(Self.delivery)
        }
    }

    public func deliveryGet(tenantID: String, id: String) async throws -> (WebhookDelivery, [WebhookAttempt])? {
        try await guarded { [self] in
            guard
                let row = try await client.query(
                    "SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries WHERE tenant_id = \(tenantID) AND id = \(id)",
                    logger: logger
                ).collect().first
            else { return nil }
            let attempts = try await client.query(
                "SELECT delivery_id, n, at, status_code, latency_ms, error, response_excerpt FROM webhook_attempts WHERE delivery_id = \(id) ORDER BY n",
                logger: logger
            ).collect().map { r in
                let (delivery, n, at, status, latency, error, excerpt) = try r.decode((String, Int32, Date, Int32?, Int32, String?, String?).self)
                return WebhookAttempt(
                    deliveryID: delivery,
                    number: Int(n),
                    at: at,
                    statusCode: status.map(Int.init),
                    latencyMs: Int(latency),
                    error: error,
                    responseExcerpt: excerpt
                )
            }
            return (try Self.delivery(row), attempts)
        }
    }

    public func deliveryRedeliver(tenantID: String, ids: [String], at: Date, audit: [AuditRecord]) async throws -> Int {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let count = try await conn.query(
                    """
                    UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = \(at), updated_at = \(at)
                    WHERE tenant_id = \(tenantID) AND id = ANY(\(ids)::text[]) AND status <> 'pending' RETURNING id
                    """,
                    logger: logger
                ).collect().count
                if count > 0 { try await Self.appendAudit(conn, audit, logger: logger) }
                return count
            }
        }
    }
}

/// Message templates.
extension PostgresStore {
    static let templateColumns = "tenant_id, name, version, subject, body, description, created_at, created_by"

    static func template(_ row: PostgresRow) throws -> MessageTemplate {
        let (tenant, name, version, subject, body, description, created, by) = try row.decode(
            (String, String, Int32, String?, String, String?, Date, String?).self
        )
        return MessageTemplate(
            tenantID: tenant,
            name: name,
            version: Int(version),
            subject: subject,
            body: body,
            description: description,
            createdAt: created,
            createdBy: by
        )
    }

    public func templateAdd(_ t: MessageTemplate, audit: [AuditRecord], quotas: StoreQuotas) async throws -> MessageTemplate {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                // New names of a tenant are counted one at a time, and versions of one name are numbered one at a time.
                try await self.ensureRoom(
                    conn,
                    scope: "templates/" + t.tenantID,
                    count: "SELECT count(DISTINCT name) FROM message_templates WHERE tenant_id = \(t.tenantID) AND name <> \(t.name)",
                    quota: quotas.templatesPerTenant,
                    "templates per tenant",
                    flag: "--max-templates-per-tenant",
                    logger: logger
                )
                let latest =
                    try await conn.query(
                        "SELECT COALESCE(MAX(version), 0) FROM message_templates WHERE tenant_id = \(t.tenantID) AND name = \(t.name)",
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                if latest >= quotas.versionsPerTemplate {
                    throw StoreQuotas.exceeded("versions per template", quotas.versionsPerTemplate, flag: "--max-versions-per-template")
                }
                let row = try await conn.query(
                    """
                    INSERT INTO message_templates (\(unescaped: Self.templateColumns))
                    SELECT \(t.tenantID), \(t.name), COALESCE(MAX(version), 0) + 1, \(t.subject), \(t.body), \(t.description), \(t.createdAt), \(t.createdBy)
                    FROM message_templates WHERE tenant_id = \(t.tenantID) AND name = \(t.name)
                    RETURNING \(unescaped: Self.templateColumns)
                    """,
                    logger: logger
                ).collect().first
                guard let row else { throw WorkflowError(.internalError, "the template was not written") }
                let written = try Self.template(row)
                let entries = audit.map {
                    var a = $0
                    a.details = .object((a.details.objectValue ?? [:]).merging(["version": .number(Double(written.version))]) { $1 })
                    return a
                }
                try await Self.appendAudit(conn, entries, logger: logger)
                return written
            }
        }
    }

    public func templateGet(tenantID: String, name: String, version: Int?) async throws -> MessageTemplate? {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.templateColumns) FROM message_templates
                WHERE tenant_id = \(tenantID) AND name = \(name) AND (\(version.map(Int32.init))::int IS NULL OR version = \(version.map(Int32.init)))
                ORDER BY version DESC LIMIT 1
                """,
                logger: logger
            ).collect().first.map(Self.template)
        }
    }

    public func templateList(tenantID: String, after: String?, limit: Int) async throws -> [MessageTemplate] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT DISTINCT ON (name) \(unescaped: Self.templateColumns) FROM message_templates
                WHERE tenant_id = \(tenantID) AND name > \(after ?? "") ORDER BY name, version DESC LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.template)
        }
    }
}
