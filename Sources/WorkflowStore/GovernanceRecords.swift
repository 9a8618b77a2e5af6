import Foundation
import WorkflowPrimitive

/// One approver's consent to activate a definition version.
public struct DefinitionApproval: Sendable, Hashable {
    public var actor: String
    public var at: Date
    public var comment: String?

    public init(actor: String, at: Date, comment: String?) {
        self.actor = actor
        self.at = at
        self.comment = comment
    }

    public static func encode(_ approvals: [DefinitionApproval]) -> JSONValue? {
        approvals.isEmpty
            ? nil
            : .array(
                approvals.map { a in
                    var fields: [String: JSONValue] = ["actor": .string(a.actor), "at": .number(Double(AuditChain.milliseconds(a.at)))]
                    fields["comment"] = a.comment.map(JSONValue.string)
                    return .object(fields)
                }
            )
    }

    public static func decode(_ json: JSONValue?) -> [DefinitionApproval] {
        (json?.arrayValue ?? []).compactMap { item in
            guard let actor = item["actor"]?.stringValue, let at = item["at"]?.numberValue else { return nil }
            return DefinitionApproval(actor: actor, at: Date(timeIntervalSince1970: at / 1000), comment: item["comment"]?.stringValue)
        }
    }
}

/// A change of a definition version's lifecycle, made only if the version is still in `expected` (so two approvers
/// deciding at once cannot both count against the same state).
public struct DefinitionUpdate: Sendable {
    public var tenantID: String
    public var id: String
    public var expected: DefinitionStatus
    public var status: DefinitionStatus
    public var approvals: [DefinitionApproval]
    public var audit: [AuditRecord]
    /// Written with the change (`definition.activated`).
    public var outbox: [OutboxEvent] = []

    public init(
        tenantID: String,
        id: String,
        expected: DefinitionStatus,
        status: DefinitionStatus,
        approvals: [DefinitionApproval],
        audit: [AuditRecord]
    ) {
        self.tenantID = tenantID
        self.id = id
        self.expected = expected
        self.status = status
        self.approvals = approvals
        self.audit = audit
    }
}

public enum DefinitionUpdateOutcome: Sendable {
    case updated(DefinitionRecord)
    case notFound
    /// The version was no longer in the expected state; here is how it stands.
    case conflict(DefinitionRecord)
}

/// A tenant's policies. Stored as JSON; absent fields take these defaults.
public struct TenantSettings: Sendable, Hashable {
    /// Approvals a definition version needs before it may start runs; 0 turns the lifecycle policy off (a registered
    /// version is active at once).
    public var activationApprovals: Int
    /// Hosts, `*.suffix` patterns and CIDRs `http_request` steps may reach even where the node's default refuses.
    public var egressAllow: [String]
    /// Hosts, `*.suffix` patterns and CIDRs `http_request` steps may never reach.
    public var egressDeny: [String]
    /// Whether run payloads are encrypted at rest (``PayloadSealer``).
    public var encryptPayloads: Bool
    /// The tenant's data key, wrapped by a master key (`<master key id>:<box>`); made when encryption is first
    /// turned on, never shown.
    public var dataKey: String?

    public init(
        activationApprovals: Int = 0,
        egressAllow: [String] = [],
        egressDeny: [String] = [],
        encryptPayloads: Bool = false,
        dataKey: String? = nil
    ) {
        self.activationApprovals = activationApprovals
        self.egressAllow = egressAllow
        self.egressDeny = egressDeny
        self.encryptPayloads = encryptPayloads
        self.dataKey = dataKey
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "activation_approvals": .number(Double(activationApprovals)),
            "egress_allow": .array(egressAllow.map(JSONValue.string)),
            "egress_deny": .array(egressDeny.map(JSONValue.string)),
            "encrypt_payloads": .bool(encryptPayloads),
        ]
        fields["data_key"] = dataKey.map(JSONValue.string)
        return .object(fields)
    }

    public init(json: JSONValue?) {
        let f = json?.objectValue ?? [:]
        self.init(
            activationApprovals: f["activation_approvals"]?.numberValue.map { Int(max(0, min(100, $0))) } ?? 0,
            egressAllow: f["egress_allow"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            egressDeny: f["egress_deny"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            encryptPayloads: f["encrypt_payloads"]?.boolValue ?? false,
            dataKey: f["data_key"]?.stringValue
        )
    }
}

/// A tenant's named secret, encrypted: `ciphertext` is the base64 of an AES-256-GCM box sealed under the master key
/// `keyID`. Only the engine, when a step runs, opens it.
public struct SecretRecord: Sendable, Hashable {
    public var tenantID: String
    public var name: String
    public var keyID: String
    public var ciphertext: String
    public var createdAt: Date
    public var updatedAt: Date
    public var updatedBy: String?

    public init(tenantID: String, name: String, keyID: String, ciphertext: String, createdAt: Date, updatedAt: Date, updatedBy: String?) {
        self.tenantID = tenantID
        self.name = name
        self.keyID = keyID
        self.ciphertext = ciphertext
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.updatedBy = updatedBy
    }
}

/// Tenant policies and secrets.
public protocol GovernanceStore: Sendable {
    /// Replaces a tenant's settings; nil when there is no such tenant.
    func tenantUpdateSettings(id: String, settings: TenantSettings, audit: [AuditRecord]) async throws -> TenantRecord?
    /// Creates or replaces a secret (keeping its creation time); true when it was created.
    /// - Throws: `quota_exceeded` when a new name would take the tenant past `quotas.secretsPerTenant`.
    func secretPut(_ secret: SecretRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool
    func secretGet(tenantID: String, name: String) async throws -> SecretRecord?
    /// A tenant's secrets by name, after the name `after` (ciphertexts included: callers show only names and times).
    func secretList(tenantID: String, after: String?, limit: Int) async throws -> [SecretRecord]
    func secretDelete(tenantID: String, name: String, audit: [AuditRecord]) async throws -> Bool
    /// Up to `limit` secrets of any tenant not sealed under `keyID` (for re-wrapping under a new master key).
    func secretsSealed(notUnder keyID: String, limit: Int) async throws -> [SecretRecord]
    /// Replaces a secret's box only if it is still `old` (a concurrent `set` wins); true when replaced.
    func secretRewrap(old: SecretRecord, keyID: String, ciphertext: String) async throws -> Bool
}
