import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Tenants and API keys.
extension PostgresStore {
    public func tenantInsert(_ tenant: TenantRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await self.ensureRoom(
                conn,
                scope: "tenants",
                count: "SELECT count(*) FROM tenants WHERE id <> \(tenant.id)",
                quota: quotas.tenants,
                "tenants",
                flag: "--max-tenants",
                logger: logger
            )
            return try await conn.query(
                """
                INSERT INTO tenants (id, name, created_at, created_by, settings)
                VALUES (\(tenant.id), \(tenant.name), \(tenant.createdAt), \(tenant.createdBy), \(tenant.settings.json.canonicalString()))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    /// Runs `body` in a transaction and appends `audit` in it when `body` changed something.
    func audited(_ audit: [AuditRecord], _ body: @escaping @Sendable (PostgresConnection) async throws -> Bool) async throws -> Bool {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                guard try await body(conn) else { return false }
                try await Self.appendAudit(conn, audit, logger: logger)
                return true
            }
        }
    }

    public func tenantGet(id: String) async throws -> TenantRecord? {
        try await guarded { [self] in
            try await client.query("SELECT id, name, created_at, created_by, settings FROM tenants WHERE id = \(id)", logger: logger)
                .collect().first.map(Self.tenant)
        }
    }

    public func tenantList(after: String?, limit: Int) async throws -> [TenantRecord] {
        try await guarded { [self] in
            try await client.query(
                "SELECT id, name, created_at, created_by, settings FROM tenants WHERE id > \(after ?? "") ORDER BY id LIMIT \(limit)",
                logger: logger
            ).collect().map(Self.tenant)
        }
    }

    public func apiKeyInsert(_ key: APIKeyRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await self.ensureRoom(
                conn,
                scope: "api_keys/" + key.tenantID,
                count: "SELECT count(*) FROM api_keys WHERE tenant_id = \(key.tenantID) AND revoked_at IS NULL",
                quota: quotas.apiKeysPerTenant,
                "unrevoked API keys per tenant",
                flag: "--max-api-keys-per-tenant",
                logger: logger
            )
            return try await conn.query(
                """
                INSERT INTO api_keys (id, tenant_id, name, prefix, hash, roles, created_at, created_by, expires_at, rate_limit, workflows)
                VALUES (\(key.id), \(key.tenantID), \(key.name), \(key.prefix), \(key.hash), \(key.roles), \(key.createdAt),
                        \(key.createdBy), \(key.expiresAt), \(key.rateLimitPerMinute), \(key.workflows))
                ON CONFLICT DO NOTHING RETURNING id
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    public func apiKeyFind(hash: String) async throws -> APIKeyRecord? {
        try await guarded { [self] in
            try await client.query("SELECT \(unescaped: Self.apiKeyColumns) FROM api_keys WHERE hash = \(hash)", logger: logger)
                .collect().first.map(Self.apiKey)
        }
    }

    public func apiKeyList(tenantID: String, after: String?, limit: Int) async throws -> [APIKeyRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.apiKeyColumns) FROM api_keys WHERE tenant_id = \(tenantID)
                AND (\(after)::text IS NULL OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE tenant_id = \(tenantID) AND id = \(after)))
                ORDER BY created_at DESC, id DESC LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.apiKey)
        }
    }

    public func apiKeyRevoke(tenantID: String, id: String, at: Date, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await conn.query(
                "UPDATE api_keys SET revoked_at = \(at) WHERE tenant_id = \(tenantID) AND id = \(id) AND revoked_at IS NULL RETURNING id",
                logger: logger
            ).collect().count > 0
        }
    }

    public func apiKeyTouch(ids: [String], at: Date) async throws {
        guard !ids.isEmpty else { return }
        try await guarded { [self] in
            _ = try await client.query(
                """
                UPDATE api_keys SET last_used_at = \(at)
                WHERE id = ANY(\(ids)::text[]) AND (last_used_at IS NULL OR last_used_at < \(at))
                """,
                logger: logger
            ).collect()
        }
    }

    public func apiKeyCount() async throws -> Int {
        try await guarded { [self] in
            var count = 0
            for try await n in try await client.query("SELECT count(*) FROM api_keys", logger: logger).decode(Int64.self) { count = Int(n) }
            return count
        }
    }

    static let apiKeyColumns =
        "id, tenant_id, name, prefix, hash, roles, created_at, created_by, expires_at, revoked_at, last_used_at, rate_limit, workflows"

    static func apiKey(_ row: PostgresRow) throws -> APIKeyRecord {
        let (id, tenant, name, prefix, hash, roles, created, createdBy, expires, revoked, used, limit, workflows) = try row.decode(
            (String, String, String, String, String, [String], Date, String?, Date?, Date?, Date?, Int32?, [String]?).self
        )
        return APIKeyRecord(
            id: id,
            tenantID: tenant,
            name: name,
            prefix: prefix,
            hash: hash,
            roles: roles,
            createdAt: created,
            createdBy: createdBy,
            expiresAt: expires,
            revokedAt: revoked,
            lastUsedAt: used,
            rateLimitPerMinute: limit.map(Int.init),
            workflows: workflows
        )
    }

    static func tenant(_ row: PostgresRow) throws -> TenantRecord {
        let (id, name, created, createdBy, settings) = try row.decode((String, String, Date, String?, String?).self)
        return TenantRecord(
            id: id,
            name: name,
            createdAt: created,
            createdBy: createdBy,
            settings: TenantSettings(json: settings.flatMap { try? JSONValue.parse($0) })
        )
    }
}
