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
            createdAt: now
        )
        switch try await store.definitionInsert(DefinitionInsertParams(record: record)) {
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

    /// The definition `name` at `version`, or its highest active version when `version` is nil.
    public func definition(name: String, version: String?, tenantID: String = defaultTenantID) async throws -> CompiledDefinition? {
        var versions = try await store.definitionVersions(tenantID: tenantID, name: name)
        let chosen: DefinitionRecord?
        if let version {
            chosen = versions.first { $0.version == version }
        } else {
            versions.removeAll { $0.status == .retired }
            chosen = versions.max {
                (SemanticVersion($0.version) ?? SemanticVersion("0.0.0")!) < (SemanticVersion($1.version) ?? SemanticVersion("0.0.0")!)
            }
        }
        return try chosen.map(compiled)
    }

    /// Resolves a reference to a definition that may start a run: like ``resolve(_:version:tenantID:)``, but a
    /// retired version is refused with `workflow_retired`.
    public func resolveStartable(
        _ reference: String,
        version: String? = nil,
        tenantID: String = defaultTenantID
    ) async throws
        -> CompiledDefinition
    {
        let definition = try await resolve(reference, version: version, tenantID: tenantID)
        guard definition.record.status == .active else {
            throw WorkflowError(
                .workflowRetired,
                "\(definition.record.name) \(definition.record.version) is retired and starts no new runs; activate it or use another version"
            )
        }
        return definition
    }

    /// Retires a version (it starts no new runs; runs in progress finish) or makes it active again.
    public func setStatus(id: String, status: DefinitionStatus, tenantID: String = defaultTenantID) async throws -> DefinitionRecord {
        guard let record = try await store.definitionSetStatus(tenantID: tenantID, id: id, status: status) else {
            throw WorkflowError(.workflowNotFound, "no workflow version \(id) is registered")
        }
        cache.withLock { $0[id] = nil }
        return record
    }

    /// Erases a version no run refers to; a version with runs can only be retired.
    public func delete(id: String, tenantID: String = defaultTenantID) async throws {
        switch try await store.definitionDelete(tenantID: tenantID, id: id) {
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
        tenantID: String = defaultTenantID
    ) async throws
        -> CompiledDefinition
    {
        if version == nil, RecordID.looksLikeID(reference), let byID = try await definition(id: reference, tenantID: tenantID) {
            return byID
        }
        if let byName = try await definition(name: reference, version: version, tenantID: tenantID) { return byName }
        let what = version.map { "\(reference) \($0)" } ?? reference
        throw WorkflowError(.workflowNotFound, "no workflow \(what) is registered")
    }

    public func list(_ params: DefinitionListParams) async throws -> [DefinitionRecord] {
        try await store.definitionList(params)
    }

    private func compiled(_ record: DefinitionRecord) throws -> CompiledDefinition {
        if let hit = cache.withLock({ $0[record.id] }), hit.record.status == record.status { return hit }
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
