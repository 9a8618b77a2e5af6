import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Tenants and API keys.
extension SQLiteStore {
    public func tenantInsert(_ tenant: TenantRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM tenants WHERE id = ?", arguments: [tenant.id]) != nil { return false }
            try Self.ensureRoom(db, "SELECT count(*) FROM tenants", [], quota: quotas.tenants, "tenants", flag: "--max-tenants")
            try db.run(
                sql: "INSERT INTO tenants (id, name, created_at, created_by, settings) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                arguments: [tenant.id, tenant.name, SQLiteCoding.ms(tenant.createdAt), tenant.createdBy, SQLiteCoding.text(tenant.settings.json)]
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func tenantGet(id: String) async throws -> TenantRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT id, name, created_at, created_by, settings FROM tenants WHERE id = ?", arguments: [id]).map(Self.tenant)
        }
    }

    public func tenantList(after: String?, limit: Int) async throws -> [TenantRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, name, created_at, created_by, settings FROM tenants WHERE id > ? ORDER BY id LIMIT ?",
                arguments: [after ?? "", limit]
            ).map(Self.tenant)
        }
    }

    public func apiKeyInsert(_ key: APIKeyRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await pool.write { db in
            try Self.ensureRoom(
                db,
                "SELECT count(*) FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL",
                [key.tenantID],
                quota: quotas.apiKeysPerTenant,
                "unrevoked API keys per tenant",
                flag: "--max-api-keys-per-tenant"
            )
            try db.run(
                sql: """
                    INSERT INTO api_keys (id, tenant_id, name, prefix, hash, roles, created_at, created_by, expires_at, rate_limit, workflows)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                    """,
                arguments: [
                    key.id, key.tenantID, key.name, key.prefix, key.hash, key.roles.joined(separator: ","), SQLiteCoding.ms(key.createdAt),
                    key.createdBy, SQLiteCoding.ms(key.expiresAt), key.rateLimitPerMinute, key.workflows?.joined(separator: ","),
                ]
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func apiKeyFind(hash: String) async throws -> APIKeyRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.apiKeyColumns) FROM api_keys WHERE hash = ?", arguments: [hash]).map(Self.apiKey)
        }
    }

    public func apiKeyList(tenantID: String, after: String?, limit: Int) async throws -> [APIKeyRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.apiKeyColumns) FROM api_keys WHERE tenant_id = ?
                    AND (? IS NULL OR (created_at, id) < (SELECT created_at, id FROM api_keys WHERE tenant_id = ? AND id = ?))
                    ORDER BY created_at DESC, id DESC LIMIT ?
                    """,
                arguments: [tenantID, after, tenantID, after, limit]
            ).map(Self.apiKey)
        }
    }

    public func apiKeyRevoke(tenantID: String, id: String, at: Date, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: "UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL",
                arguments: [SQLiteCoding.ms(at), tenantID, id]
            )
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func apiKeyTouch(ids: [String], at: Date) async throws {
        guard !ids.isEmpty else { return }
        try await pool.write { db in
            for id in ids {
                try db.run(
                    sql: "UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                    arguments: [SQLiteCoding.ms(at), id, SQLiteCoding.ms(at)]
                )
            }
        }
    }

    public func apiKeyCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM api_keys") ?? 0 }
    }

    static let apiKeyColumns =
        "id, tenant_id, name, prefix, hash, roles, created_at, created_by, expires_at, revoked_at, last_used_at, rate_limit, workflows"

    static func apiKey(_ row: Row) -> APIKeyRecord {
        APIKeyRecord(
            id: row[0],
            tenantID: row[1],
            name: row[2],
            prefix: row[3],
            hash: row[4],
            roles: (row[5] as String).split(separator: ",").map(String.init),
            createdAt: SQLiteCoding.date(row[6] as Int64),
            createdBy: row[7],
            expiresAt: SQLiteCoding.date(row[8] as Int64?),
            revokedAt: SQLiteCoding.date(row[9] as Int64?),
            lastUsedAt: SQLiteCoding.date(row[10] as Int64?),
            rateLimitPerMinute: row[11],
            workflows: (row[12] as String?).map { $0.split(separator: ",").map(String.init) }
        )
    }

    static func tenant(_ row: Row) -> TenantRecord {
        TenantRecord(
            id: row[0],
            name: row[1],
            createdAt: SQLiteCoding.date(row[2] as Int64),
            createdBy: row[3],
            settings: TenantSettings(json: try? SQLiteCoding.json(row[4]))
        )
    }
}
