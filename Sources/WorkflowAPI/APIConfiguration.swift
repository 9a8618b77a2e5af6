import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore

/// Settings of the REST API.
public struct APIConfiguration: Sendable {
    /// Largest request body accepted; larger ones get 413.
    public var maxBodyBytes: Int
    /// Page size when a list request gives no `limit`.
    public var defaultPageSize: Int
    /// Largest `limit` a list request may ask for.
    public var maxPageSize: Int
    /// A node whose last heartbeat is older than this is shown as not alive.
    public var nodeTimeout: Duration
    /// Sizes and depths of definitions and run inputs (docs/limits.md).
    public var limits: WorkflowLimits = .default

    /// Longest a client may take to send a request's body (408 after it).
    public var requestTimeout: Duration
    /// The keys that seal secrets; without them the secret routes answer 409 `master_key_missing`.
    public var masterKeys: MasterKeyring?
    /// Live streams (Server-Sent Events) this node serves at once; more are refused with 429 (each one polls the
    /// database while it is open).
    public var maxStreams: Int = 256
    /// Web origins allowed to call the API from a browser (`*` for any); none by default.
    public var corsOrigins: [String] = []
    /// Whether answers over 1 KiB are gzip-compressed for clients that ask.
    public var compression: Bool = true
    /// How many keys, webhooks, templates, schedules and secrets a tenant keeps, and how many tenants there are.
    public var quotas: StoreQuotas = .default
    /// Load balancers whose `X-Forwarded-For` names the real client (addresses or CIDRs). Without them every client
    /// behind a proxy shares the proxy's address, and one bad client's failed logins lock all of them out.
    public var trustedProxies: [IPNetwork] = []

    public init(
        maxBodyBytes: Int = 1 << 20,
        defaultPageSize: Int = 50,
        maxPageSize: Int = 500,
        nodeTimeout: Duration = .seconds(30),
        limits: WorkflowLimits = .default,
        requestTimeout: Duration = .seconds(30),
        masterKeys: MasterKeyring? = nil,
        maxStreams: Int = 256,
        corsOrigins: [String] = [],
        compression: Bool = true,
        quotas: StoreQuotas = .default,
        trustedProxies: [IPNetwork] = []
    ) {
        self.trustedProxies = trustedProxies
        self.quotas = quotas
        self.compression = compression
        self.maxStreams = maxStreams
        self.corsOrigins = corsOrigins
        self.masterKeys = masterKeys
        self.limits = limits
        self.requestTimeout = requestTimeout
        self.maxBodyBytes = maxBodyBytes
        self.defaultPageSize = defaultPageSize
        self.maxPageSize = maxPageSize
        self.nodeTimeout = nodeTimeout
    }
}
