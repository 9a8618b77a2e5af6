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
        let retired = try await store.definitionSetStatus(tenantID: defaultTenantID, id: used.id, status: .retired)
        try expect(retired?.status == .retired, "retire returns the record: \(String(describing: retired))")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: used.id)?.status == .retired, "retired is stored")
        try expect(try await store.definitionSetStatus(tenantID: "other", id: used.id, status: .active) == nil, "tenants are isolated")
        try expect(try await store.definitionSetStatus(tenantID: defaultTenantID, id: "missing", status: .active) == nil, "missing")
        try expect(
            try await store.definitionSetStatus(tenantID: defaultTenantID, id: used.id, status: .active)?.status == .active,
            "activate"
        )

        _ = try await insertRun(store, definition: used, at: t0)
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: used.id) == .inUse(runs: 1), "a version with runs stays")
        try expect(try await store.definitionDelete(tenantID: "other", id: unused.id) == .notFound, "tenants are isolated")
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: unused.id) == .deleted, "an unused version is erased")
        try expect(try await store.definitionGet(tenantID: defaultTenantID, id: unused.id) == nil, "and is gone")
        try expect(try await store.definitionDelete(tenantID: defaultTenantID, id: unused.id) == .notFound, "twice is not found")
    }
}
