import Crypto
import Foundation
import Synchronization
import WorkflowPrimitive
import WorkflowStore

/// Making, hashing and checking API keys.
public enum APIKeys {
    /// Every key starts so (secret scanners can find leaked ones).
    public static let prefix = "uwf_"

    /// A new key: `uwf_` and 32 random bytes in base64url (43 characters).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let text = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return prefix + text
    }

    /// What is stored instead of the key: hex SHA-256. The key has 256 random bits, so a plain hash is enough
    /// (no salt or stretching is needed against guessing, unlike a password).
    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The part of a key shown in listings: the prefix and four characters.
    public static func displayPrefix(_ key: String) -> String { String(key.prefix(prefix.count + 4)) }

    /// Whether `text` has the shape of a key (checked before any lookup, so junk costs no query).
    public static func looksLikeKey(_ text: String) -> Bool {
        text.hasPrefix(prefix) && (20...200).contains(text.utf8.count)
            && text.utf8.allSatisfy {
                $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a)
            }
    }
}

/// Turns presented API keys into principals, with a short cache so that a request costs no query while a
/// revocation still takes effect within `cacheTTL` on every node.
public final class APIKeyAuthenticator: Sendable {
    private struct Entry {
        var principal: Principal?
        var expires: ContinuousClock.Instant
    }

    private let store: any IdentityStore
    private let cacheTTL: Duration
    private let cache = Mutex<[String: Entry]>([:])
    /// Keys used since the last flush of `last_used_at`.
    private let used = Mutex<Set<String>>([])

    public init(store: any IdentityStore, cacheTTL: Duration = .seconds(2)) {
        self.store = store
        self.cacheTTL = cacheTTL
    }

    /// The principal of `key`, or nil when it is unknown, revoked or expired.
    public func principal(for key: String, now: Date) async throws -> Principal? {
        guard APIKeys.looksLikeKey(key) else { return nil }
        let hash = APIKeys.hash(key)
        let instant = ContinuousClock.now
        if let hit = cache.withLock({ $0[hash] }), hit.expires > instant {
            if let id = hit.principal?.keyID { _ = used.withLock { $0.insert(id) } }
            return hit.principal
        }
        let record = try await store.apiKeyFind(hash: hash)
        var principal: Principal?
        if let record, record.isValid(at: now) {
            let roles = Role.parse(record.roles).roles
            principal = Principal(
                tenantID: record.tenantID,
                subject: "key:\(record.id)",
                roles: roles,
                keyID: record.id,
                rateLimitPerMinute: record.rateLimitPerMinute,
                workflows: record.workflows.map(Set.init)
            )
            _ = used.withLock { $0.insert(record.id) }
        }
        // Expired keys fall out of the cache at their expiry at the latest.
        var expires = instant + cacheTTL
        if let at = record?.expiresAt, at > now { expires = min(expires, instant + .milliseconds(Int64(at.timeIntervalSince(now) * 1000))) }
        cache.withLock { c in
            if c.count > 10_000 { c.removeAll() }  // bounded: a flood of distinct junk keys cannot grow it
            c[hash] = Entry(principal: principal, expires: expires)
        }
        return principal
    }

    /// Forgets cached answers (after a revocation on this node, so it takes effect here at once).
    public func invalidate() { cache.withLock { $0.removeAll() } }

    private let tenants = Mutex<[String: (exists: Bool, expires: ContinuousClock.Instant)]>([:])

    /// Whether the tenant exists: a bearer token names its tenant, and a token for a tenant nobody created is refused
    /// like any invalid credential (so tokens cannot make tenants past the quota). Tenants are never deleted, so a
    /// tenant found is remembered for a minute; one not found for `cacheTTL`, so that a tenant created on another node
    /// is known here within seconds (and at once when created on this one: `tenantCreated`).
    public func tenantExists(_ id: String) async throws -> Bool {
        let instant = ContinuousClock.now
        if let hit = tenants.withLock({ $0[id] }), hit.expires > instant { return hit.exists }
        let exists = try await store.tenantGet(id: id) != nil
        tenants.withLock { t in
            if t.count > 10_000 { t.removeAll() }  // bounded: tokens naming many unknown tenants cannot grow it
            t[id] = (exists, instant + (exists ? .seconds(60) : cacheTTL))
        }
        return exists
    }

    /// Forgets that `id` was unknown (it was just created on this node).
    public func tenantCreated(_ id: String) { _ = tenants.withLock { $0.removeValue(forKey: id) } }

    /// Writes `last_used_at` for the keys used since the last call (called every few seconds, not per request).
    public func flushUsage(now: Date) async {
        let ids = used.withLock { u in
            defer { u.removeAll() }
            return Array(u)
        }
        try? await store.apiKeyTouch(ids: ids, at: now)
    }
}
