import Foundation
import Hummingbird
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// API keys (admins of a tenant) and tenants (admins of the `default` tenant).
    func addIdentityRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/api-keys") { request, context in
            let principal = try context.authorize(.admin)
            let body = try CreateAPIKeyRequest.parse(try await jsonObject(request, allowEmpty: false))
            let tenantID = body.tenantId ?? principal.tenantID
            if tenantID != principal.tenantID {
                // Keys of another tenant: the platform admin bootstraps a new tenant's first admin this way.
                guard principal.isPlatformAdmin else {
                    throw WorkflowError(.forbidden, "only an admin of the default tenant creates keys for other tenants")
                }
                guard try await identities.tenantGet(id: tenantID) != nil else {
                    throw WorkflowError(.tenantNotFound, "no tenant \(tenantID)")
                }
            }
            let now = clock.now()
            var expires: Date?
            if let text = body.expiresAt {
                guard let date = WireCoding.date(text), date > now else {
                    let issue = ValidationIssue(pointer: JSONPointer.root.appending("expires_at"), message: "must be a future RFC 3339 time")
                    throw WorkflowError(.invalidRequest, "the request is invalid", issues: [issue])
                }
                expires = date
            }
            let secret = APIKeys.generate()
            let record = APIKeyRecord(
                id: RecordID.make(now: now),
                tenantID: tenantID,
                name: body.name,
                prefix: APIKeys.displayPrefix(secret),
                hash: APIKeys.hash(secret),
                roles: Set(body.roles.map { $0.lowercased() }).sorted(),
                createdAt: now,
                createdBy: principal.subject,
                expiresAt: expires,
                rateLimitPerMinute: body.rateLimitPerMinute,
                workflows: body.workflows?.sorted()
            )
            // The key's tenant's log says a key was made for it; the creator's tenant's log says who made it.
            var audit = [
                AuditRecord(
                    tenantID: tenantID,
                    at: now,
                    context: context.audit,
                    action: "api_key.create",
                    target: "api_key:\(record.id)",
                    details: ["name": .string(record.name), "roles": .array(record.roles.map(JSONValue.string))]
                )
            ]
            if tenantID != principal.tenantID {
                audit.append(
                    AuditRecord(
                        tenantID: principal.tenantID,
                        at: now,
                        context: context.audit,
                        action: "api_key.create",
                        target: "api_key:\(record.id)",
                        details: ["tenant": .string(tenantID)]
                    )
                )
            }
            guard try await identities.apiKeyInsert(record, audit: audit, quotas: configuration.quotas) else {
                throw WorkflowError(.unavailable, "the key could not be stored; try again")
            }
            return try respond(
                CreatedAPIKey(key: secret, info: Wire.apiKey(record)),
                status: .created,
                location: "/api/v1/api-keys/\(record.id)"
            )
        }
        v1.get("/api-keys") { request, context in
            let principal = try context.authorize(.admin)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let limit = try pageSize(request)
            let keys = try await identities.apiKeyList(tenantID: principal.tenantID, after: query.get("cursor"), limit: limit)
            return try respond(Page(items: keys.map(Wire.apiKey), nextCursor: keys.count == limit ? keys.last?.id : nil))
        }
        v1.delete("/api-keys/:id") { _, context in
            let principal = try context.authorize(.admin)
            let id = try context.parameters.require("id")
            let now = clock.now()
            let audit = AuditRecord(tenantID: principal.tenantID, at: now, context: context.audit, action: "api_key.revoke", target: "api_key:\(id)")
            guard try await identities.apiKeyRevoke(tenantID: principal.tenantID, id: id, at: now, audit: [audit]) else {
                throw WorkflowError(.notFound, "no active API key \(id)")
            }
            if case .credentials(let keys, _) = authentication { keys.invalidate() }
            return Response(status: .noContent)
        }
        v1.post("/tenants") { request, context in
            let principal = try context.authorize(.admin)
            guard principal.isPlatformAdmin else { throw WorkflowError(.forbidden, "only an admin of the default tenant manages tenants") }
            let body = try CreateTenantRequest.parse(try await jsonObject(request, allowEmpty: false))
            let tenant = TenantRecord(id: body.id, name: body.name ?? body.id, createdAt: clock.now(), createdBy: principal.subject)
            let audit = [tenant.id, principal.tenantID].map {
                AuditRecord(tenantID: $0, at: tenant.createdAt, context: context.audit, action: "tenant.create", target: "tenant:\(tenant.id)")
            }
            guard try await identities.tenantInsert(tenant, audit: audit, quotas: configuration.quotas) else {
                throw WorkflowError(.tenantExists, "tenant \(body.id) exists")
            }
            if case .credentials(let keys, _) = authentication { keys.tenantCreated(tenant.id) }
            return try respond(Wire.tenant(tenant), status: .created, location: "/api/v1/tenants/\(tenant.id)")
        }
        v1.get("/tenants") { request, context in
            let principal = try context.authorize(.admin)
            guard principal.isPlatformAdmin else { throw WorkflowError(.forbidden, "only an admin of the default tenant manages tenants") }
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let limit = try pageSize(request)
            let tenants = try await identities.tenantList(after: query.get("cursor"), limit: limit)
            return try respond(Page(items: tenants.map(Wire.tenant), nextCursor: tenants.count == limit ? tenants.last?.id : nil))
        }
    }
}

extension CreateAPIKeyRequest {
    /// Reads a body, reporting every problem with its pointer.
    static func parse(_ fields: [String: JSONValue]) throws(WorkflowError) -> CreateAPIKeyRequest {
        var issues: [ValidationIssue] = []
        func issue(_ key: String, _ message: String) { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message)) }
        let known: Set<String> = ["name", "roles", "expires_at", "tenant_id", "rate_limit_per_minute", "workflows"]
        for key in fields.keys.sorted() where !known.contains(key) { issue(key, "unknown field '\(key)'") }
        let name = fields["name"]?.stringValue ?? ""
        if name.isEmpty || name.count > 100 { issue("name", "is required: 1-100 characters") }
        let roles = fields["roles"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if roles.isEmpty || roles.count != fields["roles"]?.arrayValue?.count {
            issue("roles", "must be a non-empty array of role names (\(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
        } else if let unknown = Role.parse(roles).unknown {
            issue("roles", "unknown role '\(unknown.prefix(50))'; roles are \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let expires = fields["expires_at"].flatMap { $0.isNull ? nil : $0 }
        if let expires, expires.stringValue.flatMap(WireCoding.date) == nil { issue("expires_at", "must be an RFC 3339 time") }
        let tenant = fields["tenant_id"].flatMap { $0.isNull ? nil : $0 }
        if let tenant, tenant.stringValue.map(TenantName.isValid) != true { issue("tenant_id", "must be a tenant id") }
        let rate = fields["rate_limit_per_minute"].flatMap { $0.isNull ? nil : $0 }
        if let rate, rate.integer(in: 1...1_000_000) == nil { issue("rate_limit_per_minute", "must be an integer from 1 to 1000000") }
        let scope = fields["workflows"].flatMap { $0.isNull ? nil : $0 }
        let names = scope?.arrayValue?.compactMap(\.stringValue)
        if let scope {
            let valid = names.map { n in n.count == scope.arrayValue?.count && (1...100).contains(n.count) && n.allSatisfy(WorkflowName.isValid) }
            if valid != true { issue("workflows", "must be an array of 1-100 workflow names") }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return CreateAPIKeyRequest(
            name: name,
            roles: roles,
            expiresAt: expires?.stringValue,
            tenantId: tenant?.stringValue,
            rateLimitPerMinute: rate?.integer(in: 1...1_000_000),
            workflows: names
        )
    }
}

extension CreateTenantRequest {
    static func parse(_ fields: [String: JSONValue]) throws(WorkflowError) -> CreateTenantRequest {
        var issues: [ValidationIssue] = []
        func issue(_ key: String, _ message: String) { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message)) }
        for key in fields.keys.sorted() where !["id", "name"].contains(key) { issue(key, "unknown field '\(key)'") }
        let id = fields["id"]?.stringValue ?? ""
        if !TenantName.isValid(id) { issue("id", "must be 1-63 lowercase letters, digits or '-', starting with a letter") }
        let name = fields["name"].flatMap { $0.isNull ? nil : $0 }
        if let name, (name.stringValue?.count ?? 0) == 0 || (name.stringValue?.count ?? 0) > 200 { issue("name", "must be 1-200 characters") }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return CreateTenantRequest(id: id, name: name?.stringValue)
    }
}

/// Tenant ids: short, lowercase, safe in URLs and logs.
enum TenantName {
    static func isValid(_ id: String) -> Bool {
        guard (1...63).contains(id.utf8.count), let first = id.utf8.first, first >= 0x61, first <= 0x7a else { return false }
        return id.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
    }
}

/// Workflow names a key may be scoped to: the names definitions may have.
enum WorkflowName {
    static func isValid(_ name: String) -> Bool {
        (1...200).contains(name.utf8.count) && !name.contains(",")
            && name.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0) }
    }
}
