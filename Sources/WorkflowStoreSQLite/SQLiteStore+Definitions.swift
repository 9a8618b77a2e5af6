import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// Definitions: versions of workflow definitions per tenant.
extension SQLiteStore {
    public func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult {
        let r = params.record
        return try await pool.write { db in
            if let row = try Row.fetchOne(
                db,
                sql: "SELECT * FROM workflow_definitions WHERE tenant_id = ? AND name = ? AND version = ?",
                arguments: [r.tenantID, r.name, r.version]
            ) {
                let existing = try SQLiteCoding.definition(row)
                return existing.checksum == r.checksum ? .existing(existing) : .conflict(existing)
            }
            try Self.ensureRoom(
                db,
                "SELECT count(DISTINCT name) FROM workflow_definitions WHERE tenant_id = ? AND name <> ?",
                [r.tenantID, r.name],
                quota: params.quotas.workflowsPerTenant,
                "workflows per tenant",
                flag: "--max-workflows-per-tenant"
            )
            try Self.ensureRoom(
                db,
                "SELECT count(*) FROM workflow_definitions WHERE tenant_id = ? AND name = ?",
                [r.tenantID, r.name],
                quota: params.quotas.versionsPerWorkflow,
                "versions per workflow",
                flag: "--max-versions-per-workflow"
            )
            try db.run(
                sql: """
                    INSERT INTO workflow_definitions (id, tenant_id, name, version, status, description, definition, checksum, created_by,
                        created_at, approvals)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    r.id, r.tenantID, r.name, r.version, r.status.rawValue, r.description, SQLiteCoding.text(r.spec), r.checksum, r.createdBy,
                    SQLiteCoding.ms(r.createdAt), SQLiteCoding.text(DefinitionApproval.encode(r.approvals)),
                ]
            )
            try Self.appendAudit(db, params.audit)
            try Self.insertOutbox(db, params.outbox)
            return .inserted(r)
        }
    }

    public func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord? {
        try await pool.read { db in
            try Row.fetchOne(try db.cached("SELECT * FROM workflow_definitions WHERE tenant_id = ? AND id = ?"), arguments: [tenantID, id])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord] {
        try await pool.read { db in
            try Row.fetchAll(try db.cached("SELECT * FROM workflow_definitions WHERE tenant_id = ? AND name = ?"), arguments: [tenantID, name])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await pool.read { db in
            var sql = "SELECT * FROM workflow_definitions WHERE tenant_id = ?"
            var arguments: StatementArguments = [params.tenantID]
            if let name = params.name {
                sql += " AND name = ?"
                arguments += [name]
            }
            if let after = params.after {
                sql += " AND id < ?"
                arguments += [after]
            }
            sql += " ORDER BY id DESC LIMIT ?"
            arguments += [params.limit]
            return try Row.fetchAll(try db.cached(sql), arguments: arguments).map(SQLiteCoding.definition)
        }
    }

    public func definitionUpdate(_ u: DefinitionUpdate) async throws -> DefinitionUpdateOutcome {
        try await pool.write { db in
            let fetch = {
                try Row.fetchOne(db, sql: "SELECT * FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [u.tenantID, u.id])
            }
            guard let current = try fetch().map(SQLiteCoding.definition) else { return .notFound }
            guard current.status == u.expected else { return .conflict(current) }
            try db.execute(
                sql: "UPDATE workflow_definitions SET status = ?, approvals = ? WHERE tenant_id = ? AND id = ?",
                arguments: [u.status.rawValue, SQLiteCoding.text(DefinitionApproval.encode(u.approvals)), u.tenantID, u.id]
            )
            try Self.appendAudit(db, u.audit)
            try Self.insertOutbox(db, u.outbox)
            return try fetch().map(SQLiteCoding.definition).map { .updated($0) } ?? .notFound
        }
    }

    public func definitionDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> DefinitionDeleteOutcome {
        try await pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id]) != nil
            else { return .notFound }
            let runs = try Int.fetchOne(db, sql: "SELECT count(*) FROM runs WHERE definition_id = ?", arguments: [id]) ?? 0
            guard runs == 0 else { return .inUse(runs: runs) }
            try db.execute(sql: "DELETE FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            try Self.appendAudit(db, audit)
            return .deleted
        }
    }
}
