import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// The audit log: entries are linked into their tenant's chain inside the transaction that writes them. Each chain's
/// head row is locked while entries are appended, so concurrent writers on any node append one after the other.
extension PostgresStore {
    public func auditAppend(_ records: [AuditRecord]) async throws {
        guard !records.isEmpty else { return }
        try await guarded { [self] in
            try await client.withTransaction(logger: logger) { conn in
                try await Self.appendAudit(conn, records, logger: logger)
            }
        }
    }

    /// Links and inserts `records`, tenant by tenant (in id order, so writers cannot deadlock), inside the caller's
    /// transaction.
    static func appendAudit(_ conn: PostgresConnection, _ records: [AuditRecord], logger: Logger) async throws {
        guard !records.isEmpty else { return }
        for tenant in Set(records.map(\.tenantID)).sorted() {
            try await conn.query(
                "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (\(tenant), 0, \(AuditChain.genesis)) ON CONFLICT DO NOTHING",
                logger: logger
            )
            guard
                let head = try await conn.query("SELECT seq, hash FROM audit_heads WHERE tenant_id = \(tenant) FOR UPDATE", logger: logger)
                    .collect().first
            else { throw WorkflowError(.unavailable, "the audit chain's head of tenant \(tenant) could not be read") }
            let (seq, hash) = try head.decode((Int64, String).self)
            let entries = AuditChain.link(records.filter { $0.tenantID == tenant }, after: seq == 0 ? nil : AuditHead(seq: seq, hash: hash))
            try await conn.query(
                """
                INSERT INTO audit_log (tenant_id, seq, at, actor, action, target, outcome, source, request_id, details, prev_hash, hash)
                SELECT \(tenant), u.seq, u.at, NULLIF(u.actor, ''), u.action, NULLIF(u.target, ''), u.outcome, NULLIF(u.source, ''),
                    NULLIF(u.request_id, ''), u.details, u.prev, u.hash
                FROM UNNEST(\(entries.map(\.seq))::int8[], \(entries.map { AuditChain.milliseconds($0.record.at) })::int8[],
                            \(entries.map { $0.record.actor ?? "" })::text[], \(entries.map(\.record.action))::text[],
                            \(entries.map { $0.record.target ?? "" })::text[], \(entries.map(\.record.outcome.rawValue))::text[],
                            \(entries.map { $0.record.source ?? "" })::text[], \(entries.map { $0.record.requestID ?? "" })::text[],
                            \(entries.map { $0.record.details.canonicalString() })::text[], \(entries.map(\.previousHash))::text[],
                            \(entries.map(\.hash))::text[])
                    AS u(seq, at, actor, action, target, outcome, source, request_id, details, prev, hash)
                """,
                logger: logger
            )
            if let last = entries.last {
                try await conn.query("UPDATE audit_heads SET seq = \(last.seq), hash = \(last.hash) WHERE tenant_id = \(tenant)", logger: logger)
            }
        }
    }

    public func auditList(_ params: AuditListParams) async throws -> [AuditEntry] {
        try await guarded { [self] in
            var bindings = PostgresBindings()
            var clauses: [String] = []
            func bind(_ column: String, _ op: String, _ value: some PostgresEncodable & Sendable) throws {
                try bindings.append(value)
                clauses.append("\(column) \(op) $\(bindings.count)")
            }
            try bind("tenant_id", "=", params.tenantID)
            if params.newestFirst {
                if let before = params.beforeSeq { try bind("seq", "<", before) }
            } else {
                try bind("seq", ">", params.afterSeq)
            }
            if let v = params.action { try bind("action", "=", v) }
            if let v = params.actor { try bind("actor", "=", v) }
            if let v = params.target { try bind("target", "=", v) }
            if let v = params.outcome?.rawValue { try bind("outcome", "=", v) }
            if let v = params.since { try bind("at", ">=", AuditChain.milliseconds(v)) }
            if let v = params.until { try bind("at", "<", AuditChain.milliseconds(v)) }
            bindings.append(Int64(params.limit))
            let query = PostgresQuery(
                unsafeSQL: """
                    SELECT tenant_id, seq, at, actor, action, target, outcome, source, request_id, details, prev_hash, hash FROM audit_log
                    WHERE \(clauses.joined(separator: " AND ")) ORDER BY seq \(params.newestFirst ? "DESC" : "ASC") LIMIT $\(bindings.count)
                    """,
                binds: bindings
            )
            return try await client.query(query, logger: logger).collect().map(Self.auditEntry)
        }
    }

    public func auditHead(tenantID: String) async throws -> AuditHead? {
        try await guarded { [self] in
            try await client.query("SELECT seq, hash FROM audit_heads WHERE tenant_id = \(tenantID) AND seq > 0", logger: logger).collect().first
                .map {
                    let (seq, hash) = try $0.decode((Int64, String).self)
                    return AuditHead(seq: seq, hash: hash)
                }
        }
    }

    public func auditTenants() async throws -> [String] {
        try await guarded { [self] in
            try await client.query(
                "SELECT tenant_id FROM audit_heads WHERE seq > 0 UNION SELECT DISTINCT tenant_id FROM audit_log ORDER BY 1",
                logger: logger
            ).collect().map { try $0.decode(String.self) }
        }
    }

    static func auditEntry(_ row: PostgresRow) throws -> AuditEntry {
        let (tenant, seq, at, actor, action, target, outcome, source, requestID, details, previous, hash) = try row.decode(
            (String, Int64, Int64, String?, String, String?, String, String?, String?, String, String, String).self
        )
        return .stored(
            seq: seq,
            tenantID: tenant,
            atMilliseconds: at,
            actor: actor,
            action: action,
            target: target,
            outcome: outcome,
            source: source,
            requestID: requestID,
            details: AuditEntry.details(stored: details),
            previousHash: previous,
            hash: hash
        )
    }
}
