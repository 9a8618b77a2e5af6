import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for tenants and API keys.
extension StoreContract {
    static func key(_ id: String, tenant: String = defaultTenantID, hash: String? = nil, at: Date = t0, expires: Date? = nil) -> APIKeyRecord {
        APIKeyRecord(
            id: id,
            tenantID: tenant,
            name: "key \(id)",
            prefix: "uwf_\(id.prefix(4))",
            hash: hash ?? "hash-\(id)",
            roles: ["operator", "viewer"],
            createdAt: at,
            createdBy: "key:creator",
            expiresAt: expires
        )
    }

    static func tenants(_ store: any WorkflowStore) async throws {
        try expect(try await store.tenantGet(id: defaultTenantID) != nil, "the default tenant exists from the start")
        let acme = TenantRecord(id: "acme", name: "Acme Bank", createdAt: t0, createdBy: "key:root")
        try expect(try await store.tenantInsert(acme), "a new tenant is inserted")
        try expect(try await store.tenantInsert(acme) == false, "the same id again is refused")
        let read = try await store.tenantGet(id: "acme")
        try expect(read == acme, "read back as written: \(String(describing: read))")
        try expect(try await store.tenantGet(id: "nope") == nil, "unknown tenant")
        try expect(try await store.tenantList().map(\.id) == ["acme", defaultTenantID], "listed by id")
    }

    static func apiKeys(_ store: any WorkflowStore) async throws {
        try expect(try await store.apiKeyCount() == 0, "a new database has no keys")
        let first = key("k1", at: t0, expires: t0.addingTimeInterval(3600))
        var second = key("k2", at: t0.addingTimeInterval(1))
        second.rateLimitPerMinute = 120
        second.workflows = ["payments", "loans"]
        let other = key("k3", tenant: "acme", at: t0.addingTimeInterval(2))
        for k in [first, second, other] { try expect(try await store.apiKeyInsert(k), "inserted \(k.id)") }
        try expect(try await store.apiKeyInsert(key("k1", hash: "another")) == false, "a taken id is refused")
        try expect(try await store.apiKeyInsert(key("k9", hash: "hash-k1")) == false, "a taken hash is refused")
        let count = try await store.apiKeyCount()
        try expect(count == 3, "counted: \(count)")
        try expect(try await store.apiKeyFind(hash: "hash-k1") == first, "found by hash as written")
        try expect(try await store.apiKeyFind(hash: "hash-none") == nil, "unknown hash")
        try expect(try await store.apiKeyList(tenantID: defaultTenantID).map(\.id) == ["k2", "k1"], "a tenant's keys, newest first")
        try expect(try await store.apiKeyList(tenantID: "acme").map(\.id) == ["k3"], "tenants are isolated")
        try expect(try await store.apiKeyRevoke(tenantID: "acme", id: "k1", at: t0) == false, "another tenant cannot revoke it")
        try expect(try await store.apiKeyRevoke(tenantID: defaultTenantID, id: "k1", at: t0.addingTimeInterval(5)), "revoked")
        try expect(try await store.apiKeyRevoke(tenantID: defaultTenantID, id: "k1", at: t0.addingTimeInterval(6)) == false, "once")
        let revoked = try await store.apiKeyFind(hash: "hash-k1")
        try expect(revoked?.revokedAt == t0.addingTimeInterval(5), "revocation time kept")
        try expect(revoked?.isValid(at: t0.addingTimeInterval(5)) == false, "a revoked key is not valid")
        try expect(second.isValid(at: t0.addingTimeInterval(99_999)), "a key without expiry stays valid")
        try expect(first.isValid(at: t0.addingTimeInterval(3601)) == false, "an expired key is not valid")
        try await store.apiKeyTouch(ids: ["k2", "k3"], at: t0.addingTimeInterval(10))
        try await store.apiKeyTouch(ids: ["k2"], at: t0.addingTimeInterval(8))
        try expect(try await store.apiKeyFind(hash: "hash-k2")?.lastUsedAt == t0.addingTimeInterval(10), "last use never moves back")
        try expect(try await store.apiKeyFind(hash: "hash-k3")?.lastUsedAt == t0.addingTimeInterval(10), "touched in a batch")
        try await store.apiKeyTouch(ids: [], at: t0)
    }
}
