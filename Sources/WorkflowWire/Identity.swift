import WorkflowPrimitive

/// A request to create an API key (`POST /api/v1/api-keys`).
public struct CreateAPIKeyRequest: Codable, Sendable, Hashable {
    public var name: String
    public var roles: [String]
    /// RFC 3339; the key stops working then.
    public var expiresAt: String?
    /// Another tenant's key (admins of the `default` tenant only); the caller's tenant when nil.
    public var tenantId: String?
    /// Requests a minute (per node); the server's default when nil.
    public var rateLimitPerMinute: Int?
    /// Workflow names the key is limited to; every workflow of the tenant when nil.
    public var workflows: [String]?

    public init(
        name: String,
        roles: [String],
        expiresAt: String? = nil,
        tenantId: String? = nil,
        rateLimitPerMinute: Int? = nil,
        workflows: [String]? = nil
    ) {
        self.name = name
        self.roles = roles
        self.expiresAt = expiresAt
        self.tenantId = tenantId
        self.rateLimitPerMinute = rateLimitPerMinute
        self.workflows = workflows
    }

    enum CodingKeys: String, CodingKey {
        case name, roles
        case expiresAt = "expires_at"
        case tenantId = "tenant_id"
        case rateLimitPerMinute = "rate_limit_per_minute"
        case workflows
    }
}

/// An API key as listed: never the secret.
public struct APIKeyInfo: PageItem, Hashable {
    public static let pageKey = "api_keys"
    public var id: String
    public var tenantId: String
    public var name: String
    /// The first characters of the key, to tell keys apart.
    public var prefix: String
    public var roles: [String]
    public var createdAt: String
    @Nullable public var createdBy: String?
    @Nullable public var expiresAt: String?
    @Nullable public var revokedAt: String?
    @Nullable public var lastUsedAt: String?
    @Nullable public var rateLimitPerMinute: Int?
    @Nullable public var workflows: [String]?

    public init(
        id: String,
        tenantId: String,
        name: String,
        prefix: String,
        roles: [String],
        createdAt: String,
        createdBy: String?,
        expiresAt: String?,
        revokedAt: String?,
        lastUsedAt: String?,
        rateLimitPerMinute: Int? = nil,
        workflows: [String]? = nil
    ) {
        self.rateLimitPerMinute = rateLimitPerMinute
        self.workflows = workflows
        self.id = id
        self.tenantId = tenantId
        self.name = name
        self.prefix = prefix
        self.roles = roles
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, prefix, roles
        case tenantId = "tenant_id"
        case createdAt = "created_at"
        case createdBy = "created_by"
        case expiresAt = "expires_at"
        case revokedAt = "revoked_at"
        case lastUsedAt = "last_used_at"
        case rateLimitPerMinute = "rate_limit_per_minute"
        case workflows
    }
}

/// A key just created: the only answer that carries the secret.
public struct CreatedAPIKey: Codable, Sendable, Hashable {
    public var key: String
    public var info: APIKeyInfo

    public init(key: String, info: APIKeyInfo) {
        self.key = key
        self.info = info
    }

    enum CodingKeys: String, CodingKey { case key }

    /// One flat object: the key's fields and `key`.
    public init(from decoder: any Decoder) throws {
        info = try APIKeyInfo(from: decoder)
        key = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .key)
    }

    public func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
    }
}

/// A tenant.
public struct TenantInfo: PageItem, Hashable {
    public static let pageKey = "tenants"
    public var id: String
    public var name: String
    public var createdAt: String
    @Nullable public var createdBy: String?

    public init(id: String, name: String, createdAt: String, createdBy: String?) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    enum CodingKeys: String, CodingKey {
        case id, name
        case createdAt = "created_at"
        case createdBy = "created_by"
    }
}

/// A request to create a tenant (`POST /api/v1/tenants`).
public struct CreateTenantRequest: Codable, Sendable, Hashable {
    public var id: String
    public var name: String?

    public init(id: String, name: String? = nil) {
        self.id = id
        self.name = name
    }
}
