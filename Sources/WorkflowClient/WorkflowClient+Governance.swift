import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive

// Definition lifecycle, approvals, audit, secrets, tenant settings and retention.
extension WorkflowClient {
    // MARK: governance

    /// Moves a definition version through its lifecycle: `submit`, `approve`, `reject`, `deprecate`, `retire`, `activate`.
    public func lifecycle(_ action: String, workflow: String, version: String?, comment: String? = nil) async throws -> Workflow {
        let query = version.map { "?version=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? ""
        let (_, response) = try await send(
            .POST,
            "/api/v1/workflows/\(escape(workflow))/\(escape(action))\(query)",
            body: try WireCoding.encode(CommentRequest(comment: comment)),
            contentType: "application/json"
        )
        return try decode(Workflow.self, response)
    }

    public func diff(workflow: String, from: String, to: String) async throws -> DefinitionDiff {
        try decode(DefinitionDiff.self, try await get("/api/v1/workflows/\(escape(workflow))/versions/\(escape(from))/diff/\(escape(to))"))
    }

    /// Decides an `approval` step of a run.
    public func decide(runID: String, stepID: String, approve: Bool, comment: String? = nil) async throws -> RunDetail {
        let body = ApprovalDecisionRequest(decision: approve ? "approve" : "reject", comment: comment)
        let (_, response) = try await send(
            .POST,
            "/api/v1/executions/\(escape(runID))/approvals/\(escape(stepID))",
            body: try WireCoding.encode(body),
            contentType: "application/json"
        )
        return try decode(RunDetail.self, response)
    }

    /// The caller's inbox: approval steps they may decide.
    public func pendingApprovals(limit: Int? = nil, cursor: String? = nil) async throws -> Page<PendingApproval> {
        try decode(
            Page<PendingApproval>.self,
            try await get("/api/v1/approvals", query: ["status": "pending", "limit": limit.map(String.init), "cursor": cursor])
        )
    }

    /// A page of the audit log: newest first, or in chain order after `after` (for export).
    public func audit(
        chainOrder: Bool = false,
        after: Int64? = nil,
        cursor: String? = nil,
        limit: Int? = nil,
        filters: [String: String] = [:]
    )
        async throws -> Page<AuditEntryInfo>
    {
        var query: [String: String?] = ["limit": limit.map(String.init), "cursor": cursor]
        if chainOrder {
            query["order"] = "chain"
            query["after"] = after.map(String.init)
        }
        for (key, value) in filters { query[key] = value }
        return try decode(Page<AuditEntryInfo>.self, try await get("/api/v1/audit", query: query))
    }

    public func verifyAudit(tenant: String? = nil, checkpoint: (seq: Int64, hash: String)? = nil) async throws -> AuditVerification {
        var query: [String: String?] = ["tenant": tenant]
        if let checkpoint {
            query["checkpoint_seq"] = String(checkpoint.seq)
            query["checkpoint_hash"] = checkpoint.hash
        }
        return try decode(AuditVerification.self, try await get("/api/v1/audit/verify", query: query))
    }

    public func setSecret(_ name: String, value: String) async throws -> SecretInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/secrets/\(escape(name))",
            body: try WireCoding.encode(SetSecretRequest(value: value)),
            contentType: "application/json"
        )
        return try decode(SecretInfo.self, response)
    }

    public func secrets(limit: Int? = nil, cursor: String? = nil) async throws -> Page<SecretInfo> {
        try decode(Page<SecretInfo>.self, try await get("/api/v1/secrets", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    public func deleteSecret(_ name: String) async throws {
        _ = try await send(.DELETE, "/api/v1/secrets/\(escape(name))", body: nil, contentType: nil)
    }

    /// Re-wraps every secret under the server's newest master key; returns how many were re-wrapped.
    public func rotateMasterKey() async throws -> JSONValue {
        let (_, response) = try await send(.POST, "/api/v1/secrets/rotate-master-key", body: nil, contentType: nil)
        return try decode(JSONValue.self, response)
    }

    public func tenantSettings() async throws -> TenantSettingsInfo {
        try decode(TenantSettingsInfo.self, try await get("/api/v1/tenant/settings"))
    }

    public func setTenantSettings(_ settings: TenantSettingsInfo) async throws -> TenantSettingsInfo {
        let (_, response) = try await send(.PUT, "/api/v1/tenant/settings", body: try WireCoding.encode(settings), contentType: "application/json")
        return try decode(TenantSettingsInfo.self, response)
    }

    /// Purges the tenant's finished runs created more than `olderThanDays` ago; returns how many top-level runs.
    public func purge(olderThanDays: Double) async throws -> Int {
        let body: JSONValue = ["older_than_days": .number(olderThanDays)]
        let (_, response) = try await send(.POST, "/api/v1/runs/purge", body: Data(body.canonicalString().utf8), contentType: "application/json")
        return Int(try decode(JSONValue.self, response)["purged"]?.numberValue ?? 0)
    }
}
