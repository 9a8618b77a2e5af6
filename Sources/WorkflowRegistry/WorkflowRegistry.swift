import Crypto
import Foundation
import Synchronization
import WorkflowPrimitive
import WorkflowStore

/// A registered definition with its compiled plan.
public struct CompiledDefinition: Sendable {
    public let record: DefinitionRecord
    public let plan: WorkflowPlan
}

/// Registers, finds and compiles workflow definitions.
///
/// `(name, version)` is immutable once registered, so compiled plans are cached by id and never go stale.
public final class WorkflowRegistry: Sendable {
    private let store: any WorkflowStore
    private let cache = Mutex<[String: CompiledDefinition]>([:])
    /// When each cached version's state was last read from the store (for starts by id).
    private let checked = Mutex<[String: ContinuousClock.Instant]>([:])
    /// How long a version's state read by id is trusted: a retirement on another node applies here within it.
    public static let stateTTL: Duration = .seconds(1)

    /// Whether the version's state should be read again.
    private func lastChecked(_ id: String) -> Bool {
        checked.withLock { $0[id].map { ContinuousClock.now - $0 >= Self.stateTTL } ?? true }
    }
    public let limits: WorkflowLimits

    public init(store: any WorkflowStore, limits: WorkflowLimits = .default) {
        self.store = store
        self.limits = limits
    }

    /// The outcome of a registration.
    public enum Registration: Sendable {
        case created(CompiledDefinition)
        /// The same name, version and content was already registered.
        case existing(CompiledDefinition)
    }

    /// Validates and registers a definition document (JSON or YAML, already decoded).
    ///
    /// - Throws: ``WorkflowError`` `invalid_definition` with every problem, or `version_conflict` when the same name
    ///   and version is registered with other content.
    public func register(
        document: JSONValue,
        tenantID: String = defaultTenantID,
        createdBy: String? = nil,
        audit: AuditContext? = nil,
        quotas: StoreQuotas = .default,
        now: Date
    ) async throws -> Registration {
        let definition: WorkflowDefinition
        let plan: WorkflowPlan
        do {
            (definition, plan) = try WorkflowDocument.validate(document, limits: limits)
        } catch {
            throw WorkflowError(.invalidDefinition, "the workflow definition is invalid", issues: error.issues)
        }
        let spec = document["definition"] ?? .null
        guard spec.boundedSize(limit: limits.maxDefinitionBytes, maxDepth: limits.maxDefinitionDepth) != nil else {
            throw WorkflowError(
                .definitionTooLarge,
                "the definition is larger than \(limits.maxDefinitionBytes) bytes or nests deeper than \(limits.maxDefinitionDepth) levels"
            )
        }
        let canonical: JSONValue = [
            "name": .string(definition.name), "version": .string(definition.version.description),
            "description": definition.description.map(JSONValue.string) ?? .null, "definition": spec,
        ]
        let checksum = SHA256.hash(data: canonical.canonicalData()).map { String(format: "%02x", $0) }.joined()
        let record = DefinitionRecord(
            id: RecordID.make(now: now),
            tenantID: tenantID,
            name: definition.name,
            version: definition.version.description,
            description: definition.description,
            spec: spec,
            checksum: checksum,
            createdBy: createdBy,
            createdAt: now,
            // Under an approval policy a version starts as a draft; without one it is active at once.
            status: try await policy(tenantID).activationApprovals > 0 ? .draft : .active
        )
        let entry = AuditRecord(
            tenantID: tenantID,
            at: now,
            context: audit,
            action: "definition.register",
            target: Self.target(record),
            details: ["status": .string(record.status.rawValue), "checksum": .string(checksum)]
        )
        let activated = record.status == .active ? [Self.activated(record, at: now)] : []
        switch try await store.definitionInsert(
            DefinitionInsertParams(record: record, audit: audit == nil ? [] : [entry], outbox: activated, quotas: quotas)
        ) {
        case .inserted(let r):
            return .created(remember(CompiledDefinition(record: r, plan: plan)))
        case .existing(let r):
            return .existing(try compiled(r))
        case .conflict(let r):
            throw WorkflowError(
                .versionConflict,
                "\(r.name) \(r.version) is already registered with different content; register a new version instead"
            )
        }
    }

    /// The definition with this id, or `nil`.
    public func definition(id: String, tenantID: String = defaultTenantID) async throws -> CompiledDefinition? {
        if let hit = cache.withLock({ $0[id] }), hit.record.tenantID == tenantID { return hit }
        guard let record = try await store.definitionGet(tenantID: tenantID, id: id) else { return nil }
        return try compiled(record)
    }

    /// The definition `name` at `version`; without a version its highest active one (with `startable`), or its
    /// highest version that is not retired (to read: a draft is shown to its authors).
    public func definition(
        name: String,
        version: String?,
        tenantID: String = defaultTenantID,
        startable: Bool = false
    ) async throws -> CompiledDefinition? {
        var versions = try await store.definitionVersions(tenantID: tenantID, name: name)
        let chosen: DefinitionRecord?
        if let version {
            chosen = versions.first { $0.version == version }
        } else {
            if startable, versions.contains(where: { $0.status == .active }) {
                versions.removeAll { $0.status != .active }
            } else {
                versions.removeAll { $0.status == .retired }
            }
            chosen = versions.max {
                (SemanticVersion($0.version) ?? SemanticVersion("0.0.0")!) < (SemanticVersion($1.version) ?? SemanticVersion("0.0.0")!)
            }
        }
        return try chosen.map(compiled)
    }

    /// Resolves a reference to a definition that may start a run: like ``resolve(_:version:tenantID:)``, with the
    /// version's state read afresh (another node may have retired it), and a version that starts no runs refused:
    /// `workflow_retired` for a retired one, `workflow_not_active` for a draft or one waiting for approval. Without a
    /// version, a name resolves to its highest active version.
    public func resolveStartable(
        _ reference: String,
        version: String? = nil,
        tenantID: String = defaultTenantID
    ) async throws
        -> CompiledDefinition
    {
        var definition = try await resolve(reference, version: version, tenantID: tenantID, startable: true)
        if version == nil, RecordID.looksLikeID(reference), lastChecked(definition.record.id) {
            // By id the cache answered: read the state again when it is older than `stateTTL` (another node may
            // have retired the version); this node's own lifecycle changes clear the cache at once.
            guard let fresh = try await store.definitionGet(tenantID: tenantID, id: definition.record.id) else {
                throw WorkflowError(.workflowNotFound, "no workflow \(reference) is registered")
            }
            definition = try compiled(fresh)
            checked.withLock { $0[fresh.id] = ContinuousClock.now }
        }
        let r = definition.record
        switch r.status {
        case .active, .deprecated: return definition
        case .retired:
            throw WorkflowError(.workflowRetired, "\(r.name) \(r.version) is retired and starts no new runs; activate it or use another version")
        case .draft, .pendingApproval:
            throw WorkflowError(
                .workflowNotActive,
                "\(r.name) \(r.version) is \(r.status == .draft ? "a draft" : "waiting for approval") and starts no runs until it is active"
            )
        }
    }

    /// A step of a version's lifecycle.
    public enum LifecycleAction: String, Sendable, CaseIterable {
        /// draft (or retired) → pending_approval; straight to active when the tenant has no approval policy.
        case submit
        /// Counts one approver's consent; the version becomes active with the policy's number of distinct approvers.
        case approve
        /// pending_approval → draft; the approvals so far are dropped.
        case reject
        /// active → deprecated: still starts runs when named by version, no longer chosen as the latest.
        case deprecate
        /// Any state but retired → retired: starts no new runs.
        case retire
        /// deprecated → active; retired → active only if the version was approved before or no policy applies.
        case activate
    }

    /// Moves a version through its lifecycle under the tenant's approval policy. The approver of a version is never
    /// its author, and each approver counts once.
    /// - Throws: `lifecycle_conflict` when the state does not allow the action, `self_approval`, `already_decided`.
    public func lifecycle(
        id: String,
        action: LifecycleAction,
        actor: String,
        comment: String? = nil,
        tenantID: String = defaultTenantID,
        audit: AuditContext? = nil,
        now: Date
    ) async throws -> DefinitionRecord {
        for _ in 0..<5 {
            guard let record = try await store.definitionGet(tenantID: tenantID, id: id) else {
                throw WorkflowError(.workflowNotFound, "no workflow version \(id) is registered")
            }
            let required = try await policy(tenantID).activationApprovals
            var approvals = record.approvals
            let next: DefinitionStatus
            func refuse(_ why: String) -> WorkflowError {
                WorkflowError(.lifecycleConflict, "\(record.name) \(record.version) is \(record.status.rawValue): \(why)")
            }
            switch (action, record.status) {
            case (.submit, .draft), (.submit, .retired):
                approvals = []
                next = required == 0 ? .active : .pendingApproval
            case (.approve, .pendingApproval):
                if actor == record.createdBy {
                    throw WorkflowError(.selfApproval, "the author of \(record.name) \(record.version) cannot approve it; another person must")
                }
                if approvals.contains(where: { $0.actor == actor }) {
                    throw WorkflowError(.alreadyDecided, "\(actor) has already approved \(record.name) \(record.version)")
                }
                approvals.append(DefinitionApproval(actor: actor, at: now, comment: comment))
                next = approvals.count >= required ? .active : .pendingApproval
            case (.reject, .pendingApproval):
                approvals = []
                next = .draft
            case (.deprecate, .active):
                next = .deprecated
            case (.retire, let s) where s != .retired:
                next = .retired
            case (.activate, .deprecated):
                next = .active
            case (.activate, .retired):
                guard required == 0 || approvals.count >= required else {
                    throw refuse("it was never approved; submit it for approval")
                }
                next = .active
            default:
                throw refuse("it cannot be \(action.pastTense) from this state")
            }
            var details: [String: JSONValue] = ["from": .string(record.status.rawValue), "to": .string(next.rawValue)]
            details["comment"] = comment.map(JSONValue.string)
            if action == .approve {
                details["approvals"] = .number(Double(approvals.count))
                details["required"] = .number(Double(required))
            }
            let entry = AuditRecord(
                tenantID: tenantID,
                at: now,
                context: audit,
                action: "definition.\(action.rawValue)",
                target: Self.target(record),
                details: .object(details)
            )
            var entries = [entry]
            if next == .active && record.status != .active {
                entries.append(AuditRecord(tenantID: tenantID, at: now, context: audit, action: "definition.activated", target: Self.target(record)))
            }
            var update = DefinitionUpdate(tenantID: tenantID, id: id, expected: record.status, status: next, approvals: approvals, audit: entries)
            if next == .active && record.status != .active { update.outbox = [Self.activated(record, at: now)] }
            switch try await store.definitionUpdate(update) {
            case .updated(let updated):
                cache.withLock { $0[id] = nil }
                return updated
            case .notFound:
                throw WorkflowError(.workflowNotFound, "no workflow version \(id) is registered")
            case .conflict:
                continue  // another decision landed first: decide again on the state it left
            }
        }
        throw WorkflowError(.unavailable, "the version kept changing under this request; try again")
    }

    /// The `definition.activated` event of a version that starts runs from now on.
    static func activated(_ record: DefinitionRecord, at now: Date) -> OutboxEvent {
        OutboxEvent(
            id: RecordID.make(now: now),
            tenantID: record.tenantID,
            type: "definition.activated",
            at: now,
            correlationID: record.id,
            payload: ["definition_id": .string(record.id), "name": .string(record.name), "version": .string(record.version)]
        )
    }

    /// The tenant's policies (defaults when the tenant has none stored).
    func policy(_ tenantID: String) async throws -> TenantSettings {
        try await store.tenantGet(id: tenantID)?.settings ?? TenantSettings()
    }

    static func target(_ record: DefinitionRecord) -> String { "definition:\(record.name)@\(record.version)" }

    /// Erases a version no run refers to; a version with runs can only be retired.
    public func delete(id: String, tenantID: String = defaultTenantID, audit: [AuditRecord] = []) async throws {
        switch try await store.definitionDelete(tenantID: tenantID, id: id, audit: audit) {
        case .deleted: cache.withLock { $0[id] = nil }
        case .notFound: throw WorkflowError(.workflowNotFound, "no workflow version \(id) is registered")
        case .inUse(let runs):
            throw WorkflowError(.definitionInUse, "\(runs) run(s) refer to this version: retire it instead (POST …/retire)")
        }
    }

    /// Resolves a user's reference: an id first, then a name (highest active version unless `version` is given).
    public func resolve(
        _ reference: String,
        version: String? = nil,
        tenantID: String = defaultTenantID,
        startable: Bool = false
    ) async throws
        -> CompiledDefinition
    {
        if version == nil, RecordID.looksLikeID(reference), let byID = try await definition(id: reference, tenantID: tenantID) {
            return byID
        }
        if let byName = try await definition(name: reference, version: version, tenantID: tenantID, startable: startable) { return byName }
        let what = version.map { "\(reference) \($0)" } ?? reference
        throw WorkflowError(.workflowNotFound, "no workflow \(what) is registered")
    }

    public func list(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await store.definitionList(params)
    }

    private func compiled(_ record: DefinitionRecord) throws -> CompiledDefinition {
        if let hit = cache.withLock({ $0[record.id] }) {
            // The plan never changes; the record's lifecycle does (on any node), so the caller's fresh record wins.
            return hit.record.status == record.status && hit.record.approvals == record.approvals
                ? hit : remember(CompiledDefinition(record: record, plan: hit.plan))
        }
        do {
            let spec = try DefinitionSpecDecoder.spec(from: record.spec)
            var plan = try WorkflowPlan(spec: spec)
            plan.limits = limits
            return remember(CompiledDefinition(record: record, plan: plan))
        } catch {
            // A stored definition was valid when registered; failing now means the language changed incompatibly.
            throw WorkflowError(.internalError, "stored definition \(record.name) \(record.version) no longer compiles: \(error)")
        }
    }

    private func remember(_ compiled: CompiledDefinition) -> CompiledDefinition {
        cache.withLock { $0[compiled.record.id] = compiled }
        return compiled
    }
}

/// Rebuilds the spec of a stored definition through the same validating parser used at registration.
enum DefinitionSpecDecoder {
    static func spec(from stored: JSONValue) throws -> WorkflowSpec {
        let document: JSONValue = ["name": "stored", "version": "0.0.0", "definition": stored]
        // It was valid under the limits in force when it was registered: lowering a limit later must not strand it.
        return try WorkflowDocument.validate(document, limits: .lenient).0.spec
    }
}

extension WorkflowRegistry.LifecycleAction {
    var pastTense: String {
        switch self {
        case .submit: "submitted"
        case .approve: "approved"
        case .reject: "rejected"
        case .deprecate: "deprecated"
        case .retire: "retired"
        case .activate: "activated"
        }
    }
}
