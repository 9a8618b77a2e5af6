import WorkflowPrimitive

/// What a caller may do. Named as the original design names them (`workflow:read`, `workflow:write`,
/// `workflow:execute`, `workflow:delete`, `admin:*`), extended where it needed more.
public enum Permission: String, Sendable, CaseIterable, Hashable {
    /// Read definitions, runs, their history and children, dead letters.
    case workflowRead = "workflow:read"
    /// Register definitions; retire and activate versions.
    case workflowWrite = "workflow:write"
    /// Erase definition versions no run refers to.
    case workflowDelete = "workflow:delete"
    /// Start, cancel, signal, retry and rerun runs; dismiss dead letters.
    case workflowExecute = "workflow:execute"
    /// Decide approvals (the governance issue's `approval` steps).
    case approvalDecide = "approval:decide"
    /// Read the audit log.
    case auditRead = "audit:read"
    /// Scrape `/metrics` (the whole node's figures: a key of the default tenant).
    case metricsRead = "metrics:read"
    /// Manage the tenant's API keys (and, in the default tenant, tenants and the cluster view).
    case admin = "admin:*"
}

/// A named set of permissions given to keys and token subjects.
public enum Role: String, Sendable, CaseIterable, Hashable, Codable {
    case viewer
    /// Starts, cancels, signals and retries runs.
    case `operator`
    /// Registers definitions.
    case author
    case approver
    case auditor
    /// Scrapes `/metrics` and nothing else: the key a Prometheus server holds.
    case monitor
    /// Everything, including keys; an admin of the `default` tenant also manages tenants.
    case admin

    public var permissions: Set<Permission> {
        switch self {
        case .viewer: [.workflowRead]
        case .operator: [.workflowRead, .workflowExecute]
        case .author: [.workflowRead, .workflowWrite, .workflowDelete]
        case .approver: [.workflowRead, .approvalDecide]
        case .auditor: [.workflowRead, .auditRead]
        case .monitor: [.metricsRead]
        case .admin: Set(Permission.allCases)
        }
    }

    /// Parses role names; nil names the first unknown one.
    public static func parse(_ names: [String]) -> (roles: Set<Role>, unknown: String?) {
        var roles: Set<Role> = []
        for name in names {
            guard let role = Role(rawValue: name.lowercased()) else { return ([], name) }
            roles.insert(role)
        }
        return (roles, nil)
    }
}

/// Who is calling: the tenant they act in, who they are, and what they may do.
public struct Principal: Sendable, Hashable {
    /// The tenant whose rows the caller sees; other tenants' rows do not exist for them.
    public var tenantID: String
    /// `key:<id>` for an API key, the token's subject for a bearer token.
    public var subject: String
    public var roles: Set<Role>
    /// The key this principal authenticated with, if any (rate limits and `last_used_at` are per key).
    public var keyID: String?
    /// Requests a minute this caller may make (per node), when its key sets one.
    public var rateLimitPerMinute: Int?
    /// The only workflows (by name) this caller sees and uses, when its key is scoped; nil for all of its tenant.
    public var workflows: Set<String>?

    public init(
        tenantID: String,
        subject: String,
        roles: Set<Role>,
        keyID: String? = nil,
        rateLimitPerMinute: Int? = nil,
        workflows: Set<String>? = nil
    ) {
        self.tenantID = tenantID
        self.subject = subject
        self.roles = roles
        self.keyID = keyID
        self.rateLimitPerMinute = rateLimitPerMinute
        self.workflows = workflows
    }

    /// Whether the caller sees the workflow `name` (and its runs).
    public func sees(workflow name: String) -> Bool { workflows?.contains(name) ?? true }

    public var permissions: Set<Permission> { roles.reduce(into: []) { $0.formUnion($1.permissions) } }

    public func may(_ permission: Permission) -> Bool { permissions.contains(permission) }

    /// Platform administration (tenants) belongs to the admins of the `default` tenant.
    public var isPlatformAdmin: Bool { tenantID == Self.platformTenant && roles.contains(.admin) }

    public static let platformTenant = "default"

    /// The principal of a server started with `--insecure-no-auth`: an admin of the default tenant.
    public static let anonymousAdmin = Principal(tenantID: platformTenant, subject: "anonymous", roles: [.admin])
}
