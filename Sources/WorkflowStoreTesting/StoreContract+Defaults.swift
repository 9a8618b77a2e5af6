import WorkflowStore

// The contract's cases write under the default quotas and read whole lists unless a case is about quotas or pages.
// Internal to the contract: callers in the product pass the quotas they were configured with.

extension IdentityStore {
    func tenantInsert(_ tenant: TenantRecord, audit: [AuditRecord]) async throws -> Bool {
        try await tenantInsert(tenant, audit: audit, quotas: .default)
    }
    func apiKeyInsert(_ key: APIKeyRecord, audit: [AuditRecord]) async throws -> Bool {
        try await apiKeyInsert(key, audit: audit, quotas: .default)
    }
    func apiKeyList(tenantID: String) async throws -> [APIKeyRecord] { try await apiKeyList(tenantID: tenantID, after: nil, limit: 10_000) }
}

extension GovernanceStore {
    func secretPut(_ secret: SecretRecord, audit: [AuditRecord]) async throws -> Bool {
        try await secretPut(secret, audit: audit, quotas: .default)
    }
    func secretList(tenantID: String) async throws -> [SecretRecord] { try await secretList(tenantID: tenantID, after: nil, limit: 10_000) }
}

extension ScheduleStore {
    func scheduleInsert(_ schedule: ScheduleRecord, audit: [AuditRecord]) async throws -> Bool {
        try await scheduleInsert(schedule, audit: audit, quotas: .default)
    }
}

extension EventStore {
    func templateAdd(_ template: MessageTemplate, audit: [AuditRecord]) async throws -> MessageTemplate {
        try await templateAdd(template, audit: audit, quotas: .default)
    }
    func templateList(tenantID: String) async throws -> [MessageTemplate] {
        try await templateList(tenantID: tenantID, after: nil, limit: 10_000)
    }
    func webhookInsert(_ subscription: WebhookSubscription, audit: [AuditRecord]) async throws -> Bool {
        try await webhookInsert(subscription, audit: audit, quotas: .default)
    }
}
