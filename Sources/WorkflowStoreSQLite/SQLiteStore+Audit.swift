import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// The audit log: entries are linked into their tenant's chain inside the transaction that writes them.
extension SQLiteStore {
    public func auditAppend(_ records: [AuditRecord]) async throws {
        guard !records.isEmpty else { return }
        try await pool.write { db in try Self.appendAudit(db, records) }
    }

    /// Links and inserts `records`, tenant by tenant, and moves each tenant's head. Runs inside the caller's transaction.
    static func appendAudit(_ db: Database, _ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        for tenant in Set(records.map(\.tenantID)).sorted() {
            let head = try Row.fetchOne(db.cached("SELECT seq, hash FROM audit_heads WHERE tenant_id = ?"), arguments: [tenant])
                .map { AuditHead(seq: $0[0], hash: $0[1]) }
            let entries = AuditChain.link(records.filter { $0.tenantID == tenant }, after: head)
            for e in entries {
                let r = e.record
                try db.run(
                    sql: """
                        INSERT INTO audit_log (tenant_id, seq, at, actor, action, target, outcome, source, request_id, details, prev_hash, hash)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        tenant, e.seq, AuditChain.milliseconds(r.at), r.actor, r.action, r.target, r.outcome.rawValue, r.source,
                        r.requestID, r.details.canonicalString(), e.previousHash, e.hash,
                    ]
                )
            }
            if let last = entries.last {
                try db.run(
                    sql:
                        "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    arguments: [tenant, last.seq, last.hash]
                )
            }
        }
    }

    public func auditList(_ params: AuditListParams) async throws -> [AuditEntry] {
        try await pool.read { db in
            var sql = "SELECT * FROM audit_log WHERE tenant_id = ?"
            var arguments: StatementArguments = [params.tenantID]
            if params.newestFirst {
                if let before = params.beforeSeq {
                    sql += " AND seq < ?"
                    arguments += [before]
                }
            } else {
                sql += " AND seq > ?"
                arguments += [params.afterSeq]
            }
            for (column, value) in [
                ("action", params.action), ("actor", params.actor), ("target", params.target), ("outcome", params.outcome?.rawValue),
            ] {
                if let value {
                    sql += " AND \(column) = ?"
                    arguments += [value]
                }
            }
            if let since = params.since {
                sql += " AND at >= ?"
                arguments += [AuditChain.milliseconds(since)]
            }
            if let until = params.until {
                sql += " AND at < ?"
                arguments += [AuditChain.milliseconds(until)]
            }
            sql += params.newestFirst ? " ORDER BY seq DESC LIMIT ?" : " ORDER BY seq LIMIT ?"
            arguments += [params.limit]
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.auditEntry)
        }
    }

    public func auditHead(tenantID: String) async throws -> AuditHead? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit_heads WHERE tenant_id = ?", arguments: [tenantID])
                .map { AuditHead(seq: $0[0], hash: $0[1]) }
        }
    }

    public func auditTenants() async throws -> [String] {
        try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT tenant_id FROM audit_heads UNION SELECT DISTINCT tenant_id FROM audit_log ORDER BY 1")
        }
    }

    static func auditEntry(_ row: Row) -> AuditEntry {
        .stored(
            seq: row["seq"],
            tenantID: row["tenant_id"],
            atMilliseconds: row["at"],
            actor: row["actor"],
            action: row["action"],
            target: row["target"],
            outcome: row["outcome"],
            source: row["source"],
            requestID: row["request_id"],
            details: AuditEntry.details(stored: row["details"]),
            previousHash: row["prev_hash"],
            hash: row["hash"]
        )
    }
}
