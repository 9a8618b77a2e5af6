import Foundation
import JWTKit
import Synchronization
import WorkflowPrimitive

/// How bearer tokens from the bank's identity provider are checked.
public struct JWTConfiguration: Sendable {
    /// `iss` must equal this.
    public var issuer: String
    /// `aud` must be or contain this.
    public var audience: String
    /// Where the provider publishes its keys (fetched at start, every `refreshInterval`, and when a token names a
    /// key id not seen yet), or a file holding the same JSON.
    public var jwksURL: String?
    public var jwksFile: String?
    /// An HS256 secret: only when explicitly configured (a shared secret is weaker than the provider's key pair).
    public var hs256Secret: String?
    public var tenantClaim = "tenant"
    public var rolesClaim = "roles"
    public var subjectClaim = "sub"
    /// Clock skew allowed on `exp` and `nbf`.
    public var leeway: Duration = .seconds(60)
    public var refreshInterval: Duration = .seconds(300)
    /// Least time between refetches caused by unknown key ids (so junk tokens cannot make the server hammer the
    /// provider).
    public var unknownKeyRefetchInterval: Duration = .seconds(30)

    public init(issuer: String, audience: String, jwksURL: String? = nil, jwksFile: String? = nil, hs256Secret: String? = nil) {
        self.issuer = issuer
        self.audience = audience
        self.jwksURL = jwksURL
        self.jwksFile = jwksFile
        self.hs256Secret = hs256Secret
    }

    /// The signature algorithms a token may use: RS256 and ES256, and HS256 only with a configured secret.
    var allowedAlgorithms: Set<String> { hs256Secret == nil ? ["RS256", "ES256"] : ["RS256", "ES256", "HS256"] }
}

/// Turns bearer tokens (JWTs signed by the identity provider) into principals.
public final class JWTAuthenticator: Sendable {
    public let configuration: JWTConfiguration
    private let fetch: @Sendable (String) async throws -> Data
    private let keys = Mutex<JWTKeyCollection>(JWTKeyCollection())
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)

    /// - Parameter fetch: reads the JWKS URL (injected, so this module needs no HTTP client).
    public init(configuration: JWTConfiguration, fetch: @escaping @Sendable (String) async throws -> Data) {
        self.configuration = configuration
        self.fetch = fetch
    }

    /// Loads the key set (from the URL or the file) and the HS256 secret; replaces the previous keys at once.
    public func refresh() async throws {
        let collection = JWTKeyCollection()
        var json: Data?
        if let url = configuration.jwksURL {
            json = try await fetch(url)
        } else if let file = configuration.jwksFile {
            json = try Data(contentsOf: URL(fileURLWithPath: file))
        }
        if let json {
            try await collection.add(jwksJSON: String(decoding: json, as: UTF8.self))
        }
        if let secret = configuration.hs256Secret {
            guard secret.utf8.count >= 32 else { throw WorkflowError(.invalidRequest, "an HS256 secret must be at least 32 bytes") }
            await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: "hs256")
        }
        keys.withLock { $0 = collection }
        lastRefresh.withLock { $0 = .now }
    }

    /// The principal of a valid token; nil for anything else (bad signature, unknown key, wrong issuer or
    /// audience, expired, not yet valid, an algorithm not allowed, no tenant).
    public func principal(for token: String, now: Date) async -> Principal? {
        guard token.utf8.count <= 16_384, let algorithm = Self.algorithm(of: token), configuration.allowedAlgorithms.contains(algorithm)
        else { return nil }
        var claims = try? await verify(token)
        if claims == nil {
            // A key id not seen yet: the provider may have rotated its keys. Refetch, at most every 30 seconds.
            let minimum = configuration.unknownKeyRefetchInterval
            let stale = lastRefresh.withLock { $0.map { ContinuousClock.now - $0 >= minimum } ?? true }
            if stale, configuration.jwksURL != nil || configuration.jwksFile != nil {
                try? await refresh()
                claims = try? await verify(token)
            }
        }
        guard let fields = claims?.fields else { return nil }
        return principal(from: fields, now: now)
    }

    private func verify(_ token: String) async throws -> Claims {
        let collection = keys.withLock { $0 }
        return try await collection.verify(token, as: Claims.self)
    }

    func principal(from fields: [String: JSONValue], now: Date) -> Principal? {
        let leeway = Double(configuration.leeway.components.seconds) + Double(configuration.leeway.components.attoseconds) / 1e18
        guard fields["iss"]?.stringValue == configuration.issuer else { return nil }
        let audiences = fields["aud"]?.arrayValue?.compactMap(\.stringValue) ?? fields["aud"]?.stringValue.map { [$0] } ?? []
        guard audiences.contains(configuration.audience) else { return nil }
        guard let exp = fields["exp"]?.numberValue, now.timeIntervalSince1970 < exp + leeway else { return nil }
        if let nbf = fields["nbf"]?.numberValue, now.timeIntervalSince1970 + leeway < nbf { return nil }
        guard let tenant = fields[configuration.tenantClaim]?.stringValue, !tenant.isEmpty, tenant.count <= 63,
            let subject = fields[configuration.subjectClaim]?.stringValue, !subject.isEmpty, subject.count <= 200
        else { return nil }
        let names =
            fields[configuration.rolesClaim]?.arrayValue?.compactMap(\.stringValue)
            ?? fields[configuration.rolesClaim]?.stringValue?.split(separator: " ").map(String.init) ?? []
        // Roles the provider knows but uwf does not are ignored; a token with none of ours may do nothing.
        let roles = Set(names.compactMap { Role(rawValue: $0.lowercased()) })
        return Principal(tenantID: tenant, subject: "jwt:\(subject)", roles: roles)
    }

    /// The `alg` of a token's header, read before any key is tried (so `none` and unexpected algorithms never reach
    /// the verifier).
    public static func algorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first, header.count <= 2048 else { return nil }
        var text = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let json = try? JSONValue.parse(data) else { return nil }
        return json["alg"]?.stringValue
    }
}

/// Every claim of a token, for `JWTAuthenticator` to check itself.
struct Claims: JWTPayload {
    var fields: [String: JSONValue]

    init(from decoder: any Decoder) throws {
        fields = try decoder.singleValueContainer().decode([String: JSONValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(fields)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
