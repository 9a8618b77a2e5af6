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
            try db.run(
                sql: """
                    INSERT INTO workflow_definitions (id, tenant_id, name, version, status, description, definition, checksum, created_by, created_at)
                    VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    r.id, r.tenantID, r.name, r.version, r.description, SQLiteCoding.text(r.spec), r.checksum, r.createdBy,
                    SQLiteCoding.ms(r.createdAt),
                ]
            )
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

    public func definitionSetStatus(tenantID: String, id: String, status: DefinitionStatus) async throws -> DefinitionRecord? {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE workflow_definitions SET status = ? WHERE tenant_id = ? AND id = ?",
                arguments: [status.rawValue, tenantID, id]
            )
            return try Row.fetchOne(db, sql: "SELECT * FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
                .map(SQLiteCoding.definition)
        }
    }

    public func definitionDelete(tenantID: String, id: String) async throws -> DefinitionDeleteOutcome {
        try await pool.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id]) != nil
            else { return .notFound }
            let runs = try Int.fetchOne(db, sql: "SELECT count(*) FROM runs WHERE definition_id = ?", arguments: [id]) ?? 0
            guard runs == 0 else { return .inUse(runs: runs) }
            try db.execute(sql: "DELETE FROM workflow_definitions WHERE tenant_id = ? AND id = ?", arguments: [tenantID, id])
            return .deleted
        }
    }
}
