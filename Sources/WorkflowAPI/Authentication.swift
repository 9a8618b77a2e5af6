import Foundation
import HTTPTypes
import Hummingbird
import WorkflowIdentity
import WorkflowPrimitive

/// The request context of the API: Hummingbird's core context and the caller, once authenticated.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthenticationMiddleware` for every route but the health probes.
    public var principal: Principal?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
    }
}

/// How the API learns who calls.
public enum Authentication: Sendable {
    /// `--insecure-no-auth`: every caller is an admin of the default tenant.
    case disabled
    /// `Authorization: Bearer uwf_…` or `X-API-Key: uwf_…`.
    case apiKeys(APIKeyAuthenticator)
}

/// Authenticates every request but the health probes: a missing or invalid credential is 401 `unauthenticated`
/// (the answer never says whether a key exists), and the caller's principal goes on the context.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let authentication: Authentication
    let clock: @Sendable () -> Date

    static let publicPaths: Set<String> = ["/health", "/health/ready"]
    static let apiKeyHeader = HTTPField.Name("X-API-Key")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.publicPaths.contains(request.uri.path) { return try await next(request, context) }
        var context = context
        switch authentication {
        case .disabled:
            context.principal = .anonymousAdmin
        case .apiKeys(let keys):
            guard let credential = Self.credential(request) else {
                throw WorkflowError(.unauthenticated, "this request needs credentials: Authorization: Bearer <API key> (or X-API-Key)")
            }
            guard let principal = try await keys.principal(for: credential, now: clock()) else {
                throw WorkflowError(.unauthenticated, "the credentials are not valid")
            }
            context.principal = principal
        }
        return try await next(request, context)
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
