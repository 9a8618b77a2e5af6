import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// Tenant settings and secrets.
extension PostgresStore {
    public func tenantUpdateSettings(id: String, settings: TenantSettings, audit: [AuditRecord]) async throws -> TenantRecord? {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                let rows = try await conn.query(
                    """
                    UPDATE tenants SET settings = \(settings.json.canonicalString()) WHERE id = \(id)
                    RETURNING id, name, created_at, created_by, settings
                    """,
                    logger: logger
                ).collect()
                guard let row = rows.first else { return nil }
                try await Self.appendAudit(conn, audit, logger: logger)
                return try Self.tenant(row)
            }
        }
    }

    public func secretPut(_ s: SecretRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                try await self.ensureRoom(
                    conn,
                    scope: "secrets/" + s.tenantID,
                    count: "SELECT count(*) FROM secrets WHERE tenant_id = \(s.tenantID) AND name <> \(s.name)",
                    quota: quotas.secretsPerTenant,
                    "secrets per tenant",
                    flag: "--max-secrets-per-tenant",
                    logger: logger
                )
                let rows = try await conn.query(
                    """
                    INSERT INTO secrets (tenant_id, name, key_id, ciphertext, created_at, updated_at, updated_by)
                    VALUES (\(s.tenantID), \(s.name), \(s.keyID), \(s.ciphertext), \(s.createdAt), \(s.updatedAt), \(s.updatedBy))
                    ON CONFLICT (tenant_id, name) DO UPDATE SET key_id = EXCLUDED.key_id, ciphertext = EXCLUDED.ciphertext,
                        updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
                    RETURNING (xmax = 0) AS created
                    """,
                    logger: logger
                ).collect()
                try await Self.appendAudit(conn, audit, logger: logger)
                return try rows.first?.decode(Bool.self) ?? false
            }
        }
    }

    static let secretColumns = "tenant_id, name, key_id, ciphertext, created_at, updated_at, updated_by"

    public func secretGet(tenantID: String, name: String) async throws -> SecretRecord? {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.secretColumns) FROM secrets WHERE tenant_id = \(tenantID) AND name = \(name)",
                logger: logger
            ).collect().first.map(Self.secret)
        }
    }

    public func secretList(tenantID: String, after: String?, limit: Int) async throws -> [SecretRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT \(unescaped: Self.secretColumns) FROM secrets WHERE tenant_id = \(tenantID) AND name > \(after ?? "")
                ORDER BY name LIMIT \(limit)
                """,
                logger: logger
            ).collect().map(Self.secret)
        }
    }

    public func secretDelete(tenantID: String, name: String, audit: [AuditRecord]) async throws -> Bool {
        try await audited(audit) { [self] conn in
            try await conn.query("DELETE FROM secrets WHERE tenant_id = \(tenantID) AND name = \(name) RETURNING name", logger: logger)
                .collect().count > 0
        }
    }

    public func secretsSealed(notUnder keyID: String, limit: Int) async throws -> [SecretRecord] {
        try await guarded { [self] in
            try await client.query(
                "SELECT \(unescaped: Self.secretColumns) FROM secrets WHERE key_id <> \(keyID) ORDER BY tenant_id, name LIMIT \(limit)",
                logger: logger
            ).collect().map(Self.secret)
        }
    }

    public func secretRewrap(old: SecretRecord, keyID: String, ciphertext: String) async throws -> Bool {
        try await guarded { [self] in
            try await client.query(
                """
                UPDATE secrets SET key_id = \(keyID), ciphertext = \(ciphertext)
                WHERE tenant_id = \(old.tenantID) AND name = \(old.name) AND key_id = \(old.keyID) AND ciphertext = \(old.ciphertext)
                RETURNING name
                """,
                logger: logger
            ).collect().count > 0
        }
    }

    static func secret(_ row: PostgresRow) throws -> SecretRecord {
        let (tenant, name, keyID, ciphertext, created, updated, by) = try row.decode((String, String, String, String, Date, Date, String?).self)
        return SecretRecord(tenantID: tenant, name: name, keyID: keyID, ciphertext: ciphertext, createdAt: created, updatedAt: updated, updatedBy: by)
    }
}
