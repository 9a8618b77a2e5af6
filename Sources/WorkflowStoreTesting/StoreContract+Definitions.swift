import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for definitions: insert, versions, lifecycle, deletion, tenants.
extension StoreContract {
    static func definitions(_ store: any WorkflowStore) async throws {
        let v1 = try await insertDefinition(store, definition(version: "1.0.0", at: t0))
        let v2 = try await insertDefinition(store, definition(version: "1.1.0", at: t0.addingTimeInterval(1)))
        _ = try await insertDefinition(store, definition("other", at: t0.addingTimeInterval(2)))

        switch try await store.definitionInsert(DefinitionInsertParams(record: definition(version: "1.0.0", checksum: "c1"))) {
        case .existing(let r): try expect(r.id == v1.id, "same content returns the existing record")
        default: throw Failure(description: "same name, version and checksum must be .existing")
        }
        switch try await store.definitionInsert(DefinitionInsertParams(record: definition(version: "1.0.0", checksum: "c2"))) {
        case .conflict(let r): try expect(r.id == v1.id, "conflict reports the existing record")
        default: throw Failure(description: "same name and version with another checksum must be .conflict")
        }

        let got = try await store.definitionGet(tenantID: defaultTenantID, id: v2.id)
        try expect(got == v2, "definitionGet returns what was inserted: \(String(describing: got))")
        try expect(try await store.definitionGet(tenantID: "other-tenant", id: v2.id) == nil, "tenants are isolated")
        try expect(
            Set(try await store.definitionVersions(tenantID: defaultTenantID, name: "wf").map(\.version)) == ["1.0.0", "1.1.0"],
            "definitionVersions lists every version of a name"
        )

        let first = try await store.definitionList(DefinitionListParams(limit: 2))
        try expect(first.map(\.name) == ["other", "wf"] && first[1].version == "1.1.0", "newest first: \(first.map(\.version))")
        let second = try await store.definitionList(DefinitionListParams(limit: 2, after: first.last?.id))
        try expect(second.map(\.id) == [v1.id], "the cursor continues after the last id")
        try expect(try await store.definitionList(DefinitionListParams(name: "other")).count == 1, "name filter")
    }

    static func definitionLifecycle(_ store: any WorkflowStore) async throws {
        let used = try await insertDefinition(store, definition(version: "1.0.0"))
        let unused = try await insertDefinition(store, definition(version: "2.0.0"))
        try expect(used.status == .active, "a new version is active")
        func update(
            _ id: String,
            tenant: String = defaultTenantID,
            from: DefinitionStatus,
            to: DefinitionStatus,
            approvals: [DefinitionApproval] = []
        )
            async throws -> DefinitionUpdateOutcome
        {
            let audit = AuditRecord(tenantID: tenant, at: t0, context: nil, action: "definition.\(to.rawValue)", target: id)
            return try await store.definitionUpdate(
                DefinitionUpdate(tenantID: tenant, id: id, expected: from, status: to, approvals: approvals, audit: [audit])
            )
        }
        guard case .updated(let retired) = try await update(used.id, from: .active, to: .retired) else {
            throw Failure(description: "retiring an active version must update it")
        }
        try expect(retired.status == .retired, "retire returns the record: \(retired)")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: used.id)?.status == .retired, "retired is stored")
        guard case .notFound = try await update(used.id, tenant: "other", from: .retired, to: .active) else {
            throw Failure(description: "tenants are isolated")
        }
        guard case .notFound = try await update("missing", from: .retired, to: .active) else { throw Failure(description: "missing") }
        guard case .conflict(let current) = try await update(used.id, from: .active, to: .active) else {
            throw Failure(description: "an update from a state the version is no longer in is a conflict")
        }
        try expect(current.status == .retired, "the conflict reports the current state")
        let approval = DefinitionApproval(actor: "key:b", at: t0.addingTimeInterval(1.5), comment: "four eyes")
        guard case .updated(let active) = try await update(used.id, from: .retired, to: .active, approvals: [approval]) else {
            throw Failure(description: "activate")
        }
        try expect(active.approvals == [approval] && active.status == .active, "approvals are stored with the state: \(active.approvals)")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: used.id)?.approvals == [approval], "and read back")
        let audit = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10))
        try expect(audit.map(\.record.action) == ["definition.retired", "definition.active"], "only applied updates are audited: \(audit)")

        var draft = definition(version: "3.0.0")
        draft.status = .draft
        let inserted = try await insertDefinition(store, draft)
        try expect(inserted.status == .draft, "a version is inserted in the state it is given")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: draft.id)?.status == .draft, "draft is stored")

        _ = try await insertRun(store, definition: used, at: t0)
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: used.id) == .inUse(runs: 1), "a version with runs stays")
        try expect(try await store.definitionDelete(tenantID: "other", id: unused.id) == .notFound, "tenants are isolated")
        let deleted = try await store.definitionDelete(
            tenantID: defaultTenantID,
            id: unused.id,
            audit: [AuditRecord(tenantID: defaultTenantID, at: t0, context: nil, action: "definition.delete")]
        )
        try expect(deleted == .deleted, "an unused version is erased")
        try expect(
            try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10, newestFirst: true)).first?.record.action
                == "definition.delete",
            "and the erasure is audited with it"
        )
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: unused.id) == nil, "and is gone")
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: unused.id) == .notFound, "twice is not found")
    }
}
