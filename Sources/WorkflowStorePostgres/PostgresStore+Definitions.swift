import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Definitions: versions of workflow definitions per tenant.
extension PostgresStore {
    static let definitionColumns =
        "id, tenant_id, name, version, description, definition::text AS definition, checksum, created_by, created_at, status, approvals"

    public func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult {
        try await guarded { [self] in
            let r = params.record
            return try await client.withTransaction(logger: logger) { conn in
                let select: PostgresQuery =
                    "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(r.tenantID) AND name = \(r.name) AND version = \(r.version)"
                // A version registered again is answered as before, whatever the quotas.
                if let row = try await conn.query(select, logger: logger).collect().first {
                    let existing = try Self.definition(row)
                    return existing.checksum == r.checksum ? .existing(existing) : .conflict(existing)
                }
                try await self.ensureRoom(
                    conn,
                    scope: "definitions/" + r.tenantID,
                    count: "SELECT count(DISTINCT name) FROM workflow_definitions WHERE tenant_id = \(r.tenantID) AND name <> \(r.name)",
                    quota: params.quotas.workflowsPerTenant,
                    "workflows per tenant",
                    flag: "--max-workflows-per-tenant",
                    logger: logger
                )
                let versions =
                    try await conn.query(
                        "SELECT count(*) FROM workflow_definitions WHERE tenant_id = \(r.tenantID) AND name = \(r.name)",
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                if versions >= params.quotas.versionsPerWorkflow {
                    throw StoreQuotas.exceeded("versions per workflow", params.quotas.versionsPerWorkflow, flag: "--max-versions-per-workflow")
                }
                let inserted = try await conn.query(
                    """
                    INSERT INTO workflow_definitions (id, tenant_id, name, version, status, description, definition, checksum, created_by,
                        created_at, approvals)
                    VALUES (\(r.id), \(r.tenantID), \(r.name), \(r.version), \(r.status.rawValue), \(r.description),
                            \(r.spec.canonicalString())::jsonb, \(r.checksum), \(r.createdBy), \(r.createdAt),
                            \(DefinitionApproval.encode(r.approvals)?.canonicalString()))
                    ON CONFLICT (tenant_id, name, version) DO NOTHING RETURNING id
                    """,
                    logger: logger
                ).collect()
                if !inserted.isEmpty {
                    try await Self.appendAudit(conn, params.audit, logger: logger)
                    try await Self.insertOutbox(conn, params.outbox, logger: logger)
                    return .inserted(r)
                }
                let rows = try await conn.query(select, logger: logger).collect()
                guard let row = rows.first else { throw PostgresStoreError("definition vanished during insert") }
                let existing = try Self.definition(row)
                return existing.checksum == r.checksum ? .existing(existing) : .conflict(existing)
            }
        }
    }

    public func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id)",
                logger: logger
            ).collect().first.map(Self.definition)
        }
    }

    public func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord] {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(tenantID) AND name = \(name)",
                logger: logger
            ).collect().map(Self.definition)
        }
    }

    public func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions
                WHERE tenant_id = \(params.tenantID) AND (\(params.name)::text IS NULL OR name = \(params.name))
                  AND (\(params.after)::text IS NULL OR id < \(params.after))
                ORDER BY id DESC LIMIT \(params.limit)
                """,
                logger: logger
            ).collect().map(Self.definition)
        }
    }

    public func definitionUpdate(_ u: DefinitionUpdate) async throws -> DefinitionUpdateOutcome {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let rows = try await conn.query(
                    """
                    SELECT \(unescaped: Self.definitionColumns) FROM workflow_definitions WHERE tenant_id = \(u.tenantID) AND id = \(u.id)
                    FOR UPDATE
                    """,
                    logger: logger
                ).collect()
                guard let current = try rows.first.map(Self.definition) else { return .notFound }
                guard current.status == u.expected else { return .conflict(current) }
                let updated = try await conn.query(
                    """
                    UPDATE workflow_definitions SET status = \(u.status.rawValue), approvals = \(DefinitionApproval.encode(u.approvals)?.canonicalString())
                    WHERE tenant_id = \(u.tenantID) AND id = \(u.id) RETURNING \(unescaped: Self.definitionColumns)
                    """,
                    logger: logger
                ).collect()
                try await Self.appendAudit(conn, u.audit, logger: logger)
                try await Self.insertOutbox(conn, u.outbox, logger: logger)
                return try updated.first.map { .updated(try Self.definition($0)) } ?? .notFound
            }
        }
    }

    public func definitionDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> DefinitionDeleteOutcome {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let exists = try await conn.query(
                    "SELECT 1 FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id) FOR UPDATE",
                    logger: logger
                ).collect()
                guard !exists.isEmpty else { return .notFound }
                var runs = 0
                for try await n in try await conn.query("SELECT count(*) FROM runs WHERE definition_id = \(id)", logger: logger).decode(Int.self) {
                    runs = n
                }
                guard runs == 0 else { return .inUse(runs: runs) }
                try await conn.query("DELETE FROM workflow_definitions WHERE tenant_id = \(tenantID) AND id = \(id)", logger: logger)
                try await Self.appendAudit(conn, audit, logger: logger)
                return .deleted
            }
        }
    }
}
