import Foundation
import WorkflowPrimitive

/// A tenant: every stored row belongs to exactly one.
public struct TenantRecord: Sendable, Hashable {
    public var id: String
    public var name: String
    public var createdAt: Date
    public var createdBy: String?
    public var settings: TenantSettings

    public init(id: String, name: String, createdAt: Date, createdBy: String?, settings: TenantSettings = TenantSettings()) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.settings = settings
    }
}

/// An API key of a service account. Only the SHA-256 of the secret is stored; `prefix` (the first characters of
/// the key) lets people tell their keys apart without the secret.
public struct APIKeyRecord: Sendable, Hashable {
    public var id: String
    public var tenantID: String
    public var name: String
    public var prefix: String
    /// Hex SHA-256 of the whole key.
    public var hash: String
    /// Role names (see `Role` in WorkflowIdentity).
    public var roles: [String]
    public var createdAt: Date
    public var createdBy: String?
    public var expiresAt: Date?
    public var revokedAt: Date?
    public var lastUsedAt: Date?
    /// Requests a minute this key may make (per node); nil for the server's default.
    public var rateLimitPerMinute: Int?
    /// The workflow names this key may see and use; nil for every workflow of its tenant.
    public var workflows: [String]?

    public init(
        id: String,
        tenantID: String,
        name: String,
        prefix: String,
        hash: String,
        roles: [String],
        createdAt: Date,
        createdBy: String?,
        expiresAt: Date? = nil,
        revokedAt: Date? = nil,
        lastUsedAt: Date? = nil,
        rateLimitPerMinute: Int? = nil,
        workflows: [String]? = nil
    ) {
        self.workflows = workflows
        self.rateLimitPerMinute = rateLimitPerMinute
        self.id = id
        self.tenantID = tenantID
        self.name = name
        self.prefix = prefix
        self.hash = hash
        self.roles = roles
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }

    /// Usable at `now`: not revoked, not expired.
    public func isValid(at now: Date) -> Bool { revokedAt == nil && (expiresAt.map { $0 > now } ?? true) }
}

/// Tenants and API keys.
public protocol IdentityStore: Sendable {
    /// Creates a tenant; false when one with this id exists.
    /// - Throws: `quota_exceeded` when there are `quotas.tenants` already.
    func tenantInsert(_ tenant: TenantRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool
    func tenantGet(id: String) async throws -> TenantRecord?
    /// Tenants by id, after the id `after`.
    func tenantList(after: String?, limit: Int) async throws -> [TenantRecord]
    /// Stores a new key; false when its id is taken (a second bootstrap racing the first).
    /// - Throws: `quota_exceeded` when the tenant has `quotas.apiKeysPerTenant` unrevoked keys already.
    func apiKeyInsert(_ key: APIKeyRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool
    /// The key whose secret hashes to `hash`, revoked and expired ones included (the caller decides).
    func apiKeyFind(hash: String) async throws -> APIKeyRecord?
    /// A tenant's keys, newest first (by creation time, then id), after the key `after`.
    func apiKeyList(tenantID: String, after: String?, limit: Int) async throws -> [APIKeyRecord]
    /// Revokes a tenant's key at `at`; false when the tenant has no such unrevoked key.
    func apiKeyRevoke(tenantID: String, id: String, at: Date, audit: [AuditRecord]) async throws -> Bool
    /// Records that these keys were used at `at` (batched by the caller; never moves the time back).
    func apiKeyTouch(ids: [String], at: Date) async throws
    /// How many keys exist, revoked ones included (zero means the database has never been secured).
    func apiKeyCount() async throws -> Int
}

extension IdentityStore {
    public func tenantInsert(_ tenant: TenantRecord) async throws -> Bool { try await tenantInsert(tenant, audit: [], quotas: .default) }
    public func apiKeyInsert(_ key: APIKeyRecord) async throws -> Bool { try await apiKeyInsert(key, audit: [], quotas: .default) }
    /// Every tenant, by id (at most `StoreQuotas.tenants`, read a page at a time).
    public func tenantList() async throws -> [TenantRecord] {
        var all: [TenantRecord] = []
        while true {
            let page = try await tenantList(after: all.last?.id, limit: 1_000)
            all += page
            if page.count < 1_000 { return all }
        }
    }
    public func apiKeyRevoke(tenantID: String, id: String, at: Date) async throws -> Bool {
        try await apiKeyRevoke(tenantID: tenantID, id: id, at: at, audit: [])
    }
}
