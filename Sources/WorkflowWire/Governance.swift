import WorkflowPrimitive

/// An approver's consent to a definition version's activation.
public struct ApprovalInfo: Codable, Sendable, Hashable {
    public var actor: String
    public var at: String
    @Nullable public var comment: String?

    public init(actor: String, at: String, comment: String?) {
        self.actor = actor
        self.at = at
        self.comment = comment
    }
}

/// The body of a lifecycle step or a decision (`POST …/submit|approve|reject|deprecate|retire|activate`), optional.
public struct CommentRequest: Codable, Sendable, Hashable {
    public var comment: String?
    public init(comment: String? = nil) { self.comment = comment }
}

/// One change between two versions of a workflow: `op` is `add`, `remove` or `replace`; `path` a JSON pointer into the
/// `definition` (steps are matched by id, so `/steps/charge/config/url`, not an array index).
public struct DefinitionChange: Codable, Sendable, Hashable {
    public var op: String
    public var path: String
    public var from: JSONValue?
    public var to: JSONValue?

    public init(op: String, path: String, from: JSONValue?, to: JSONValue?) {
        self.op = op
        self.path = path
        self.from = from
        self.to = to
    }
}

/// `GET /api/v1/workflows/{name}/versions/{a}/diff/{b}`.
public struct DefinitionDiff: Codable, Sendable, Hashable {
    public var name: String
    public var from: String
    public var to: String
    public var changes: [DefinitionChange]

    public init(name: String, from: String, to: String, changes: [DefinitionChange]) {
        self.name = name
        self.from = from
        self.to = to
        self.changes = changes
    }
}

/// A decision on an `approval` step (`POST /api/v1/executions/{id}/approvals/{step}`).
public struct ApprovalDecisionRequest: Codable, Sendable, Hashable {
    /// `approve` or `reject`.
    public var decision: String
    public var comment: String?

    public init(decision: String, comment: String? = nil) {
        self.decision = decision
        self.comment = comment
    }
}

/// An approval step waiting for decisions, as an approver's inbox lists it.
public struct PendingApproval: PageItem, Hashable {
    public static let pageKey = "approvals"
    public var runId: String
    public var stepId: String
    public var workflowName: String
    public var workflowVersion: String
    /// Who started the run (who may not approve it).
    @Nullable public var initiator: String?
    public var approversRequired: Int
    public var approvals: [ApprovalInfo]
    public var allowedRoles: [String]
    @Nullable public var message: String?
    public var requestedAt: String
    @Nullable public var expiresAt: String?

    public init(
        runId: String,
        stepId: String,
        workflowName: String,
        workflowVersion: String,
        initiator: String?,
        approversRequired: Int,
        approvals: [ApprovalInfo],
        allowedRoles: [String],
        message: String?,
        requestedAt: String,
        expiresAt: String?
    ) {
        self.runId = runId
        self.stepId = stepId
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.initiator = initiator
        self.approversRequired = approversRequired
        self.approvals = approvals
        self.allowedRoles = allowedRoles
        self.message = message
        self.requestedAt = requestedAt
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case runId = "run_id"
        case stepId = "step_id"
        case workflowName = "workflow_name"
        case workflowVersion = "workflow_version"
        case initiator
        case approversRequired = "approvers_required"
        case approvals
        case allowedRoles = "allowed_roles"
        case message
        case requestedAt = "requested_at"
        case expiresAt = "expires_at"
    }
}

/// An entry of the audit log (`GET /api/v1/audit`).
public struct AuditEntryInfo: PageItem, Hashable {
    public static let pageKey = "entries"
    public var tenantId: String
    public var seq: Int64
    public var at: String
    @Nullable public var actor: String?
    public var action: String
    @Nullable public var target: String?
    public var outcome: String
    @Nullable public var source: String?
    @Nullable public var requestId: String?
    public var details: JSONValue
    public var prevHash: String
    public var hash: String

    public init(
        tenantId: String,
        seq: Int64,
        at: String,
        actor: String?,
        action: String,
        target: String?,
        outcome: String,
        source: String?,
        requestId: String?,
        details: JSONValue,
        prevHash: String,
        hash: String
    ) {
        self.tenantId = tenantId
        self.seq = seq
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.outcome = outcome
        self.source = source
        self.requestId = requestId
        self.details = details
        self.prevHash = prevHash
        self.hash = hash
    }

    enum CodingKeys: String, CodingKey {
        case tenantId = "tenant_id"
        case seq, at, actor, action, target, outcome, source
        case requestId = "request_id"
        case details
        case prevHash = "prev_hash"
        case hash
    }
}

/// The answer of `GET /api/v1/audit/verify`.
public struct AuditVerification: Codable, Sendable, Hashable {
    public struct Break: Codable, Sendable, Hashable {
        public var seq: Int64
        public var reason: String
        public var message: String

        public init(seq: Int64, reason: String, message: String) {
            self.seq = seq
            self.reason = reason
            self.message = message
        }
    }

    public var tenantId: String
    public var valid: Bool
    /// Entries checked.
    public var entries: Int64
    /// The newest entry's sequence number and hash: keep them somewhere else to detect truncation later.
    public var headSeq: Int64
    public var headHash: String
    @Nullable public var firstBreak: Break?

    public init(tenantId: String, valid: Bool, entries: Int64, headSeq: Int64, headHash: String, firstBreak: Break?) {
        self.tenantId = tenantId
        self.valid = valid
        self.entries = entries
        self.headSeq = headSeq
        self.headHash = headHash
        self.firstBreak = firstBreak
    }

    enum CodingKeys: String, CodingKey {
        case tenantId = "tenant_id"
        case valid, entries
        case headSeq = "head_seq"
        case headHash = "head_hash"
        case firstBreak = "first_break"
    }
}

/// A secret as listed: its name and times, never its value.
public struct SecretInfo: PageItem, Hashable {
    public static let pageKey = "secrets"
    public var name: String
    public var createdAt: String
    public var updatedAt: String
    @Nullable public var updatedBy: String?

    public init(name: String, createdAt: String, updatedAt: String, updatedBy: String?) {
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }

    enum CodingKeys: String, CodingKey {
        case name
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case updatedBy = "updated_by"
    }
}

/// `PUT /api/v1/secrets/{name}`.
public struct SetSecretRequest: Codable, Sendable, Hashable {
    public var value: String
    public init(value: String) { self.value = value }
}

/// A tenant's policies (`GET|PUT /api/v1/tenant/settings`).
public struct TenantSettingsInfo: Codable, Sendable, Hashable {
    /// Approvals a definition version needs before it starts runs; 0 turns the lifecycle policy off.
    public var activationApprovals: Int
    public var egressAllow: [String]
    public var egressDeny: [String]
    /// Whether run inputs and outputs, step configs, outputs and errors, kept signals and history are encrypted
    /// at rest.
    public var encryptPayloads: Bool

    public init(activationApprovals: Int, egressAllow: [String], egressDeny: [String], encryptPayloads: Bool = false) {
        self.activationApprovals = activationApprovals
        self.egressAllow = egressAllow
        self.egressDeny = egressDeny
        self.encryptPayloads = encryptPayloads
    }

    enum CodingKeys: String, CodingKey {
        case activationApprovals = "activation_approvals"
        case egressAllow = "egress_allow"
        case egressDeny = "egress_deny"
        case encryptPayloads = "encrypt_payloads"
    }
}
