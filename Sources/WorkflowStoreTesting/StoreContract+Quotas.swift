import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for quotas (each checked in the transaction that would pass it, concurrent creates included) and for
/// the paged lists of tenants, keys, secrets and templates.
extension StoreContract {
    static func quotas(_ store: any WorkflowStore) async throws {
        let quotas = StoreQuotas(
            tenants: 3,
            apiKeysPerTenant: 2,
            webhooksPerTenant: 2,
            templatesPerTenant: 2,
            versionsPerTemplate: 2,
            schedulesPerTenant: 2,
            secretsPerTenant: 2,
            workflowsPerTenant: 2,
            versionsPerWorkflow: 2
        )
        func refused(_ what: String, _ body: () async throws -> Void) async throws {
            do {
                try await body()
                throw Failure(description: "\(what): accepted past its quota")
            } catch let error as WorkflowError {
                try expect(error.code == .quotaExceeded, "\(what): \(error.code.rawValue) \(error.message)")
            }
        }
        func tenant(_ id: String) -> TenantRecord { TenantRecord(id: id, name: id, createdAt: t0, createdBy: nil) }

        // Tenants: the default one counts; a taken id is still "exists", not "full".
        for id in ["t1", "t2"] { try expect(try await store.tenantInsert(tenant(id), audit: [], quotas: quotas), "tenant \(id)") }
        try await refused("a fourth tenant") { _ = try await store.tenantInsert(tenant("t3"), audit: [], quotas: quotas) }
        try expect(try await store.tenantInsert(tenant("t1"), audit: [], quotas: quotas) == false, "a taken id is refused as taken")
        try expect(try await store.tenantGet(id: "t3") == nil, "nothing written past the quota")
        let firstPage = try await store.tenantList(after: nil, limit: 2)
        let secondPage = try await store.tenantList(after: firstPage.last?.id, limit: 2)
        try expect(firstPage.map(\.id) == [defaultTenantID, "t1"] && secondPage.map(\.id) == ["t2"], "tenants paged by id")

        // API keys: unrevoked ones count; revoking one makes room; pages go newest first.
        for (i, id) in ["k1", "k2"].enumerated() {
            try expect(
                try await store.apiKeyInsert(key(id, at: t0.addingTimeInterval(Double(i))), audit: [], quotas: quotas),
                "key \(id)"
            )
        }
        try await refused("a third key") { _ = try await store.apiKeyInsert(key("k3", at: t0.addingTimeInterval(2)), audit: [], quotas: quotas) }
        try expect(try await store.apiKeyInsert(key("o1", tenant: "t1"), audit: [], quotas: quotas), "other tenants have their own quota")
        try expect(try await store.apiKeyRevoke(tenantID: defaultTenantID, id: "k1", at: t0), "revoked")
        try expect(try await store.apiKeyInsert(key("k3", at: t0.addingTimeInterval(2)), audit: [], quotas: quotas), "a revoked key frees room")
        let keys1 = try await store.apiKeyList(tenantID: defaultTenantID, after: nil, limit: 2)
        let keys2 = try await store.apiKeyList(tenantID: defaultTenantID, after: keys1.last?.id, limit: 2)
        try expect(keys1.map(\.id) == ["k3", "k2"] && keys2.map(\.id) == ["k1"], "keys paged newest first: \(keys1.map(\.id)) \(keys2.map(\.id))")

        // Secrets: replacing one is not a new one.
        func secret(_ name: String) -> SecretRecord {
            SecretRecord(tenantID: defaultTenantID, name: name, keyID: "k", ciphertext: "box", createdAt: t0, updatedAt: t0, updatedBy: nil)
        }
        for name in ["A", "B"] { try expect(try await store.secretPut(secret(name), audit: [], quotas: quotas), "secret \(name)") }
        try expect(try await store.secretPut(secret("A"), audit: [], quotas: quotas) == false, "replacing at the quota is allowed")
        try await refused("a third secret") { _ = try await store.secretPut(secret("C"), audit: [], quotas: quotas) }
        let secrets = try await store.secretList(tenantID: defaultTenantID, after: "A", limit: 5)
        try expect(secrets.map(\.name) == ["B"], "secrets paged by name")

        // Schedules.
        for id in ["s1", "s2"] { try expect(try await store.scheduleInsert(schedule(id, wake: nil), audit: [], quotas: quotas), id) }
        try expect(try await store.scheduleInsert(schedule("s1", wake: nil), audit: [], quotas: quotas) == false, "a taken id is taken")
        try await refused("a third schedule") { _ = try await store.scheduleInsert(schedule("s3", wake: nil), audit: [], quotas: quotas) }

        // Templates: names per tenant and versions per name.
        func template(_ name: String) -> MessageTemplate {
            MessageTemplate(
                tenantID: defaultTenantID,
                name: name,
                version: 0,
                subject: nil,
                body: "b",
                description: nil,
                createdAt: t0,
                createdBy: nil
            )
        }
        _ = try await store.templateAdd(template("a"), audit: [], quotas: quotas)
        _ = try await store.templateAdd(template("a"), audit: [], quotas: quotas)
        try await refused("a third version") { _ = try await store.templateAdd(template("a"), audit: [], quotas: quotas) }
        _ = try await store.templateAdd(template("b"), audit: [], quotas: quotas)
        try await refused("a third name") { _ = try await store.templateAdd(template("c"), audit: [], quotas: quotas) }
        let templates = try await store.templateList(tenantID: defaultTenantID, after: "a", limit: 5)
        try expect(templates.map(\.name) == ["b"], "templates paged by name")

        // Workflows: names per tenant and versions per name; registering an existing version again is not growth.
        func register(_ name: String, _ version: String) async throws -> DefinitionInsertResult {
            try await store.definitionInsert(DefinitionInsertParams(record: definition(name, version: version), quotas: quotas))
        }
        for (name, version) in [("a", "1"), ("a", "2"), ("b", "1")] {
            guard case .inserted = try await register(name, version) else { throw Failure(description: "\(name)@\(version) not inserted") }
        }
        guard case .existing = try await register("a", "2") else { throw Failure(description: "a registered version is existing at the quota") }
        try await refused("a third version") { _ = try await register("a", "3") }
        try await refused("a third workflow") { _ = try await register("c", "1") }
        try expect(try await store.definitionVersions(tenantID: defaultTenantID, name: "a").count == 2, "nothing written past the quota")

        // Webhooks, created concurrently: the quota holds against racing transactions, not only one at a time.
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<6 {
                group.addTask {
                    do {
                        return try await store.webhookInsert(webhook("w\(i)", tenant: "t2"), audit: [], quotas: quotas)
                    } catch let error as WorkflowError where error.code == .quotaExceeded {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let created = results.filter { $0 }.count
        let listed = try await store.webhookList(tenantID: "t2").count
        try expect(created == 2 && listed == 2, "six concurrent creates, a quota of two: \(created) created, \(listed) listed")

        // Re-wrapping a webhook's sealed secrets (a master key rotation) is a compare-and-set on what was read.
        guard let hook = try await store.webhookList(tenantID: "t2").first else { throw Failure(description: "no webhook") }
        var stale = hook
        stale.secret = "rotated meanwhile"
        try expect(try await store.webhookRewrap(old: stale, keyID: "k2", secret: "box2", previousSecret: nil) == false, "a changed secret wins")
        try expect(try await store.webhookRewrap(old: hook, keyID: "k2", secret: "box2", previousSecret: "prev2"), "re-wrapped")
        let read = try await store.webhookGet(tenantID: "t2", id: hook.id)
        try expect(
            read?.secret == "box2" && read?.keyID == "k2" && read?.previousSecret == "prev2" && read?.url == hook.url && read?.status == hook.status,
            "only the sealed secrets changed: \(String(describing: read))"
        )
    }
}
