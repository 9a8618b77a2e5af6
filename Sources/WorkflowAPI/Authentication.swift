import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore

/// The request context of the API: Hummingbird's core context and the caller, once authenticated.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` for every route but the health probes.
    public var principal: Principal?
    /// The caller's address, for brute-force protection and the audit log: the TCP peer, or behind a trusted proxy
    /// (`--trusted-proxy`) the client the proxy names in `X-Forwarded-For` (`ClientAddressMiddleware`).
    public var source: String
    /// The request's id: the caller's `X-Request-ID` when it is sensible, otherwise one made up; sent back on the
    /// answer and kept in the audit log.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.source = source.channel.remoteAddress?.ipAddress ?? "unknown"
        self.requestID = ""
    }

    /// Who asks, from where, in which request, for the audit log.
    public var audit: AuditContext { AuditContext(actor: principal?.subject, source: source, requestID: requestID) }
}

/// How the API learns who calls.
public enum Authentication: Sendable {
    /// `--insecure-no-auth`: every caller is an admin of the default tenant.
    case disabled
    /// API keys (`Authorization: Bearer uwf_…` or `X-API-Key: uwf_…`), and bearer tokens from an identity provider
    /// when `tokens` is configured.
    case credentials(APIKeyAuthenticator, tokens: JWTAuthenticator?)

    /// API keys only.
    public static func apiKeys(_ keys: APIKeyAuthenticator) -> Authentication { .credentials(keys, tokens: nil) }
}

/// Limits on callers: requests a minute per principal, and failed authentications per source address.
public struct CallerLimits: Sendable {
    public var rateLimiter: RateLimiter
    public var loginGuard: LoginGuard

    public init(rateLimiter: RateLimiter = RateLimiter(defaultPerMinute: 1000), loginGuard: LoginGuard = LoginGuard()) {
        self.rateLimiter = rateLimiter
        self.loginGuard = loginGuard
    }
}

/// Authenticates every request but the health probes: a missing or invalid credential is 401 `unauthenticated`
/// (the answer never says whether a key exists), and the caller's principal goes on the context. A source that
/// failed too often is refused for a while (429 `locked_out`); a caller over its rate is refused with 429
/// `rate_limited`; both say when to come back (`Retry-After`), and every answer carries `RateLimit-*` headers.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let authentication: Authentication
    let limits: CallerLimits
    let clock: @Sendable () -> Date
    let audit: AuditWriter

    static let publicPaths: Set<String> = ["/health", "/health/ready", "/openapi.json", "/api-docs"]
    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.publicPaths.contains(request.uri.path) { return try await next(request, context) }
        var context = context
        switch authentication {
        case .disabled:
            context.principal = .anonymousAdmin
        case .credentials(let keys, let tokens):
            if let wait = limits.loginGuard.lockedFor(context.source) {
                return Self.refusal(WorkflowError(.lockedOut, "too many failed authentications from this address; try again later"), retryAfter: wait)
            }
            guard let credential = Self.credential(request) else {
                // Not an authentication attempt, and not audited: it would be a free write for anyone who reaches
                // the port (failed attempts are bounded by the lockout).
                throw WorkflowError(.unauthenticated, "this request needs credentials: Authorization: Bearer <API key> (or X-API-Key)")
            }
            var found: Principal?
            var reason = "invalid credentials"
            if APIKeys.looksLikeKey(credential) || tokens == nil {
                found = try await keys.principal(for: credential, now: clock())
            } else if let token = await tokens?.principal(for: credential, now: clock()) {
                // The identity provider names the tenant; only tenants an admin created exist here.
                if try await keys.tenantExists(token.tenantID) {
                    found = token
                } else {
                    reason = "token for an unknown tenant"
                }
            }
            guard let principal = found else {
                limits.loginGuard.failed(context.source)
                await auditFailure(context, reason: reason)
                throw WorkflowError(.unauthenticated, "the credentials are not valid")
            }
            limits.loginGuard.succeeded(context.source)
            context.principal = principal
        }
        guard let principal = context.principal,
            let decision = limits.rateLimiter.take(principal.keyID ?? principal.subject, perMinute: principal.rateLimitPerMinute)
        else { return try await next(request, context) }
        guard decision.allowed else {
            let error = WorkflowError(.rateLimited, "more than \(decision.limit) requests a minute; slow down")
            var response = Self.refusal(error, retryAfter: .seconds(decision.retryAfterSeconds ?? 1))
            Self.addRateHeaders(decision, to: &response.headers)
            return response
        }
        // Successful answers carry the caller's budget; an error answer (thrown, rendered by ProblemMiddleware) does not.
        var response = try await next(request, context)
        Self.addRateHeaders(decision, to: &response.headers)
        return response
    }

    /// A failed authentication goes to the platform tenant's log: whom it was meant for is unknown. The presented
    /// credential itself is never kept.
    func auditFailure(_ context: Context, reason: String) async {
        let record = AuditRecord(
            tenantID: Principal.platformTenant,
            at: clock(),
            context: context.audit,
            action: "auth.fail",
            target: context.endpointPath,
            outcome: .denied,
            details: ["reason": .string(reason)]
        )
        await audit.append([record], logger: context.logger)
    }

    static let rateLimitLimit = HTTPField.Name("RateLimit-Limit")!
    static let rateLimitRemaining = HTTPField.Name("RateLimit-Remaining")!
    static let rateLimitReset = HTTPField.Name("RateLimit-Reset")!

    static func addRateHeaders(_ decision: TokenBuckets.Decision, to headers: inout HTTPFields) {
        headers[rateLimitLimit] = String(decision.limit)
        headers[rateLimitRemaining] = String(decision.remaining)
        headers[rateLimitReset] = String(decision.resetSeconds)
    }

    static func refusal(_ error: WorkflowError, retryAfter: Duration) -> Response {
        var response = ProblemMiddleware<Context>.problem(error)
        response.headers[.retryAfter] = String(max(1, retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0)))
        return response
    }

    /// The presented credential: a bearer token, or the `X-API-Key` header.
    static func credential(_ request: Request) -> String? {
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return parts[1].trimmingCharacters(in: .whitespaces) }
            return nil
        }
        return request.headers[Self.apiKeyHeader]
    }
}

extension APIRequestContext {
    /// The caller, if allowed `permission`.
    /// - Throws: `unauthenticated` without a principal, `forbidden` when its roles do not allow it.
    func authorize(_ permission: Permission) throws -> Principal {
        guard let principal else { throw WorkflowError(.unauthenticated, "this request needs credentials") }
        guard principal.may(permission) else {
            throw WorkflowError(.forbidden, "\(principal.subject) may not do this: it needs \(permission.rawValue)")
        }
        return principal
    }
}
