import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Tenant settings and secrets.
extension SQLiteStore {
    public func tenantUpdateSettings(id: String, settings: TenantSettings, audit: [AuditRecord]) async throws -> TenantRecord? {
        try await pool.write { db in
            try db.run(sql: "UPDATE tenants SET settings = ? WHERE id = ?", arguments: [SQLiteCoding.text(settings.json), id])
            guard db.changesCount > 0 else { return nil }
            try Self.appendAudit(db, audit)
            return try Row.fetchOne(db, sql: "SELECT id, name, created_at, created_by, settings FROM tenants WHERE id = ?", arguments: [id])
                .map(Self.tenant)
        }
    }

    public func secretPut(_ s: SecretRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await pool.write { db in
            let existed = try Int.fetchOne(db, sql: "SELECT 1 FROM secrets WHERE tenant_id = ? AND name = ?", arguments: [s.tenantID, s.name]) != nil
            if !existed {
                try Self.ensureRoom(
                    db,
                    "SELECT count(*) FROM secrets WHERE tenant_id = ?",
                    [s.tenantID],
                    quota: quotas.secretsPerTenant,
                    "secrets per tenant",
                    flag: "--max-secrets-per-tenant"
                )
            }
            try db.run(
                sql: """
                    INSERT INTO secrets (tenant_id, name, key_id, ciphertext, created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id, name) DO UPDATE SET key_id = excluded.key_id, ciphertext = excluded.ciphertext,
                        updated_at = excluded.updated_at, updated_by = excluded.updated_by
                    """,
                arguments: [s.tenantID, s.name, s.keyID, s.ciphertext, SQLiteCoding.ms(s.createdAt), SQLiteCoding.ms(s.updatedAt), s.updatedBy]
            )
            try Self.appendAudit(db, audit)
            return !existed
        }
    }

    public func secretGet(tenantID: String, name: String) async throws -> SecretRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM secrets WHERE tenant_id = ? AND name = ?", arguments: [tenantID, name]).map(Self.secret)
        }
    }

    public func secretList(tenantID: String, after: String?, limit: Int) async throws -> [SecretRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM secrets WHERE tenant_id = ? AND name > ? ORDER BY name LIMIT ?",
                arguments: [tenantID, after ?? "", limit]
            ).map(Self.secret)
        }
    }

    public func secretDelete(tenantID: String, name: String, audit: [AuditRecord]) async throws -> Bool {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM secrets WHERE tenant_id = ? AND name = ?", arguments: [tenantID, name])
            guard db.changesCount > 0 else { return false }
            try Self.appendAudit(db, audit)
            return true
        }
    }

    public func secretsSealed(notUnder keyID: String, limit: Int) async throws -> [SecretRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM secrets WHERE key_id <> ? ORDER BY tenant_id, name LIMIT ?", arguments: [keyID, limit])
                .map(Self.secret)
        }
    }

    public func secretRewrap(old: SecretRecord, keyID: String, ciphertext: String) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: "UPDATE secrets SET key_id = ?, ciphertext = ? WHERE tenant_id = ? AND name = ? AND key_id = ? AND ciphertext = ?",
                arguments: [keyID, ciphertext, old.tenantID, old.name, old.keyID, old.ciphertext]
            )
            return db.changesCount > 0
        }
    }

    static func secret(_ row: Row) -> SecretRecord {
        SecretRecord(
            tenantID: row["tenant_id"],
            name: row["name"],
            keyID: row["key_id"],
            ciphertext: row["ciphertext"],
            createdAt: SQLiteCoding.date(row["created_at"] as Int64),
            updatedAt: SQLiteCoding.date(row["updated_at"] as Int64),
            updatedBy: row["updated_by"]
        )
    }
}
