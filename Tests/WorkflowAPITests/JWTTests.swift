import AsyncHTTPClient
import CryptoExtras
import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import Synchronization
import Testing
import WorkflowAPI
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowTestSupport

/// Bearer tokens from an identity provider: tokens minted here with locally generated keys, the JWKS served by a
/// local HTTP server standing in for the provider.
@Suite struct JWTTests {
    /// Claims as the test writes them.
    struct Token: JWTPayload {
        var claims: [String: JSONValue]
        init(_ claims: [String: JSONValue]) { self.claims = claims }
        init(from decoder: any Decoder) throws { claims = try decoder.singleValueContainer().decode([String: JSONValue].self) }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(claims)
        }
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static let issuer = "https://idp.bank.test"
    static let audience = "uwf"

    static func claims(
        tenant: String = "default",
        roles: JSONValue = ["viewer"],
        expiresIn: Double = 300,
        notBefore: Double? = nil,
        issuer: String = issuer,
        audience: JSONValue = ["uwf", "other"]
    ) -> Token {
        let now = Date().timeIntervalSince1970
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "aud": audience, "sub": "ada@bank.test", "tenant": .string(tenant), "roles": roles,
            "exp": .number((now + expiresIn).rounded()), "iat": .number(now.rounded()),
        ]
        if let notBefore { claims["nbf"] = .number((now + notBefore).rounded()) }
        return Token(claims)
    }

    static func jwk(_ key: ES256PrivateKey, kid: String) throws -> JSONValue {
        let (x, y) = try #require(key.publicKey.parameters)
        return ["kty": "EC", "crv": "P-256", "kid": .string(kid), "alg": "ES256", "use": "sig", "x": .string(x), "y": .string(y)]
    }

    static func jwk(_ key: _RSA.Signing.PrivateKey, kid: String) throws -> JSONValue {
        let primitives = try key.publicKey.getKeyPrimitives()
        func b64(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(
                of: "=",
                with: ""
            )
        }
        return [
            "kty": "RSA", "kid": .string(kid), "alg": "RS256", "use": "sig", "n": .string(b64(primitives.modulus)),
            "e": .string(b64(primitives.publicExponent)),
        ]
    }

    @Test func tokensFromTheProviderAreCheckedAndRotatedKeysFollowed() async throws {
        let ec = ES256PrivateKey()
        let rsaBacking = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: ec, kid: "ec-1")
        await signer.add(rsa: try Insecure.RSA.PrivateKey(backing: rsaBacking), digestAlgorithm: .sha256, kid: "rsa-1")
        let published = Mutex<[JSONValue]>([try Self.jwk(ec, kid: "ec-1"), try Self.jwk(rsaBacking, kid: "rsa-1")])
        try await LocalHTTPServer.with({ router, _ in
            router.get("/jwks") { _, _ in
                let body = JSONValue.object(["keys": .array(published.withLock { $0 })]).canonicalData()
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
        }) { provider in
            var configuration = JWTConfiguration(issuer: Self.issuer, audience: Self.audience, jwksURL: provider.baseURL + "/jwks")
            configuration.unknownKeyRefetchInterval = .zero
            let tokens = JWTAuthenticator(configuration: configuration) { url in
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
                return Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
            }
            try await tokens.refresh()
            // Many refusals follow from one address: the lockout (tested elsewhere) must not hide what each one answers.
            try await withAPI(limits: CallerLimits(loginGuard: LoginGuard(maxFailures: 1000)), tokens: tokens) { api in
                func status(
                    _ token: String,
                    _ method: HTTPRequest.Method = .get,
                    _ path: String = "/api/v1/executions"
                ) async throws -> HTTPResponse.Status {
                    try await api.call(method, path, method == .post ? "{}" : nil, headers: ["Authorization": "Bearer \(token)"]).status
                }
                // ES256 and RS256 tokens of the provider are accepted, with the roles they carry.
                let viewer = try await signer.sign(Self.claims(), kid: "ec-1")
                #expect(try await status(viewer) == .ok)
                #expect(try await status(viewer, .post, "/api/v1/execute") == .forbidden, "a viewer may not start runs")
                #expect(
                    try await status(try await signer.sign(Self.claims(roles: "operator viewer"), kid: "rsa-1"), .post, "/api/v1/execute")
                        == .unprocessableContent
                )
                // Everything else is refused, with the same answer as a bad key.
                for (what, token) in [
                    ("expired", try await signer.sign(Self.claims(expiresIn: -3600), kid: "ec-1")),
                    ("not yet valid", try await signer.sign(Self.claims(notBefore: 3600), kid: "ec-1")),
                    ("another audience", try await signer.sign(Self.claims(audience: "someone-else"), kid: "ec-1")),
                    ("another issuer", try await signer.sign(Self.claims(issuer: "https://evil.test"), kid: "ec-1")),
                    ("tampered", String(viewer.dropLast(4)) + "AAAA"),
                    ("unsigned", Self.unsigned(Self.claims())),
                    ("HS256 while not configured", try await Self.hs256(Self.claims())),
                ] {
                    #expect(try await status(token) == .unauthorized, "\(what)")
                }
                // Within the clock skew allowance, a token just past its expiry still counts.
                #expect(try await status(try await signer.sign(Self.claims(expiresIn: -30), kid: "ec-1")) == .ok)

                // The provider rotates: a new key appears in its JWKS, and tokens signed with it work at once.
                let next = ES256PrivateKey()
                await signer.add(ecdsa: next, kid: "ec-2")
                let rotated = try await signer.sign(Self.claims(), kid: "ec-2")
                published.withLock { $0 = [try! Self.jwk(next, kid: "ec-2")] }
                #expect(try await status(rotated) == .ok, "an unknown key id makes the server refetch the JWKS")
                #expect(try await status(viewer) == .unauthorized, "the retired key is no longer trusted once the JWKS drops it")

                // The tenant comes from the token, and must be one an admin created: a token for an unknown tenant is
                // refused like a bad key (a provider's typo does not make a tenant, nor pass the tenants' quota).
                let acme = try await signer.sign(Self.claims(tenant: "acme", roles: ["admin"]), kid: "ec-2")
                #expect(try await status(acme) == .unauthorized, "no tenant acme yet")
                #expect(try await api.call(.post, "/api/v1/tenants", #"{"id": "acme"}"#).status == .created)
                let acmeLater = try await signer.sign(Self.claims(tenant: "acme2", roles: ["admin"]), kid: "ec-2")
                #expect(try await status(acmeLater) == .unauthorized)
                // Another tenant's token sees none of this tenant's runs.
                let listing = try await api.call(.get, "/api/v1/executions", headers: ["Authorization": "Bearer \(acme)"])
                #expect(listing.status == .ok && listing.json["executions"] == [])
            }
        }
    }

    /// A token with `"alg": "none"` and no signature.
    static func unsigned(_ token: Token) -> String {
        func b64(_ value: JSONValue) -> String {
            value.canonicalData().base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        return b64(["alg": "none", "typ": "JWT"]) + "." + b64(.object(token.claims)) + "."
    }

    static func hs256(_ token: Token) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: "a shared secret of at least thirty-two bytes"), digestAlgorithm: .sha256, kid: "hs")
        return try await keys.sign(token, kid: "hs")
    }

    @Test func theAlgorithmIsReadBeforeAnyKeyIsTried() {
        #expect(JWTAuthenticator.algorithm(of: Self.unsigned(Self.claims())) == "none")
        #expect(JWTAuthenticator.algorithm(of: "not a token") == nil)
        #expect(JWTAuthenticator.algorithm(of: String(repeating: "a", count: 5000) + ".b.c") == nil)
    }
}
