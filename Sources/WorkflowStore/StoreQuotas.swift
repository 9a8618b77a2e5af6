import WorkflowPrimitive

/// How many of each thing a tenant may keep, and how many tenants there may be.
///
/// Every collection a caller can grow is bounded, and the bound is checked by the driver inside the transaction that
/// would grow it (so two concurrent creates cannot both pass it). Over a quota the write fails with
/// `quota_exceeded` and changes nothing. The flags of `uwf serve` set them (docs/limits.md).
public struct StoreQuotas: Sendable, Hashable {
    /// Tenants, the default one included.
    public var tenants: Int
    /// API keys of a tenant that are not revoked (revoked ones stay listed, and do not count).
    public var apiKeysPerTenant: Int
    /// Webhook subscriptions of a tenant: every event fans out to each of them.
    public var webhooksPerTenant: Int
    /// Message template names of a tenant.
    public var templatesPerTenant: Int
    /// Versions of one message template (old versions stay readable by `name@N`).
    public var versionsPerTemplate: Int
    /// Schedules of a tenant (the original design's capacity, which the scheduler is measured with).
    public var schedulesPerTenant: Int
    /// Secrets of a tenant.
    public var secretsPerTenant: Int
    /// Workflow names of a tenant (definitions, counted by name).
    public var workflowsPerTenant: Int
    /// Versions of one workflow (a version with runs can be retired, not deleted).
    public var versionsPerWorkflow: Int

    public init(
        tenants: Int = 10_000,
        apiKeysPerTenant: Int = 1_000,
        webhooksPerTenant: Int = 25,
        templatesPerTenant: Int = 1_000,
        versionsPerTemplate: Int = 1_000,
        schedulesPerTenant: Int = 100_000,
        secretsPerTenant: Int = 1_000,
        workflowsPerTenant: Int = 10_000,
        versionsPerWorkflow: Int = 1_000
    ) {
        self.workflowsPerTenant = workflowsPerTenant
        self.versionsPerWorkflow = versionsPerWorkflow
        self.tenants = tenants
        self.apiKeysPerTenant = apiKeysPerTenant
        self.webhooksPerTenant = webhooksPerTenant
        self.templatesPerTenant = templatesPerTenant
        self.versionsPerTemplate = versionsPerTemplate
        self.schedulesPerTenant = schedulesPerTenant
        self.secretsPerTenant = secretsPerTenant
    }

    public static let `default` = StoreQuotas()

    /// The error of a full collection, e.g. "at most 25 webhooks per tenant (--max-webhooks-per-tenant)".
    public static func exceeded(_ what: String, _ quota: Int, flag: String) -> WorkflowError {
        WorkflowError(.quotaExceeded, "at most \(quota) \(what) (\(flag))")
    }
}
