import Foundation
import Hummingbird
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Webhook subscriptions and their deliveries: admins only (they send the tenant's events out).
    func addWebhookRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/webhooks") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            let fields = try await jsonObject(request, allowEmpty: false)
            let input = try WebhookInput(fields, creating: true)
            let keys = try masterKeys()
            let now = clock.now()
            let id = input.id ?? "wh_" + RecordID.make(now: now).replacingOccurrences(of: "-", with: "").suffix(20)
            let secret = input.secret ?? EventRelay.makeSecret()
            let sealed = try keys.seal(Data(secret.utf8), context: EventRelay.secretContext(tenantID: principal.tenantID, id: id))
            let subscription = WebhookSubscription(
                tenantID: principal.tenantID,
                id: id,
                url: input.url!,
                eventTypes: input.eventTypes ?? ["*"],
                secret: sealed.box,
                keyID: sealed.keyID,
                status: input.enabled == false ? .disabled : .active,
                description: input.description,
                createdAt: now,
                updatedAt: now,
                createdBy: principal.subject
            )
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: now,
                context: context.audit,
                action: "webhook.create",
                target: "webhook:\(id)",
                details: ["url": .string(subscription.url), "event_types": .array(subscription.eventTypes.map(JSONValue.string))]
            )
            // Every event fans out to every subscription: the quota keeps one event from becoming thousands of requests.
            guard try await store.webhookInsert(subscription, audit: [audit], quotas: configuration.quotas) else {
                throw WorkflowError(.webhookExists, "a webhook \(id) exists")
            }
            return try respond(
                WebhookWithSecret(webhook: Wire.webhook(subscription), secret: secret),
                status: .created,
                location: "/api/v1/webhooks/\(id)"
            )
        }
        v1.get("/webhooks") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            return try respond(Page(items: try await store.webhookList(tenantID: principal.tenantID).map(Wire.webhook), nextCursor: nil))
        }
        v1.get("/webhooks/:id") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            return try respond(Wire.webhook(try await webhook(context, principal.tenantID)))
        }
        v1.put("/webhooks/:id") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            let input = try WebhookInput(try await jsonObject(request, allowEmpty: false), creating: false)
            var s = try await webhook(context, principal.tenantID)
            if let url = input.url { s.url = url }
            if let types = input.eventTypes { s.eventTypes = types }
            if let description = input.description { s.description = description }
            if let enabled = input.enabled {
                s.status = enabled ? .active : .disabled
                s.disabledReason = enabled ? nil : "disabled by \(principal.subject)"
            }
            s.updatedAt = clock.now()
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: s.updatedAt,
                context: context.audit,
                action: "webhook.update",
                target: "webhook:\(s.id)",
                details: ["url": .string(s.url), "status": .string(s.status.rawValue)]
            )
            guard try await store.webhookUpdate(s, audit: [audit]) else { throw WorkflowError(.notFound, "no webhook \(s.id)") }
            return try respond(Wire.webhook(s))
        }
        v1.delete("/webhooks/:id") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            let id = try context.parameters.require("id")
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: clock.now(),
                context: context.audit,
                action: "webhook.delete",
                target: "webhook:\(id)"
            )
            guard try await store.webhookDelete(tenantID: principal.tenantID, id: id, audit: [audit]) else {
                throw WorkflowError(.notFound, "no webhook \(id.prefix(100))")
            }
            return Response(status: .noContent)
        }
        v1.post("/webhooks/:id/rotate-secret") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            var grace = 86_400
            _ = try await commentedBody(request, extra: ["grace_seconds"]) { fields, issues in
                guard let value = fields["grace_seconds"] else { return }
                if let n = value.numberValue, n.rounded() == n, n >= 0, n <= 7 * 86_400 {
                    grace = Int(n)
                } else {
                    issues.append(
                        ValidationIssue(pointer: JSONPointer.root.appending("grace_seconds"), message: "must be a whole number from 0 to 604800")
                    )
                }
            }
            let keys = try masterKeys()
            var s = try await webhook(context, principal.tenantID)
            let now = clock.now()
            let secret = EventRelay.makeSecret()
            let sealed = try keys.seal(Data(secret.utf8), context: EventRelay.secretContext(tenantID: s.tenantID, id: s.id))
            // The old secret stays (sealed as it was) and signs too, until the grace period ends.
            s.previousSecret = grace > 0 ? s.secret : nil
            s.previousSecretExpiresAt = grace > 0 ? now.addingTimeInterval(Double(grace)) : nil
            s.secret = sealed.box
            s.keyID = sealed.keyID
            s.updatedAt = now
            let audit = AuditRecord(
                tenantID: s.tenantID,
                at: now,
                context: context.audit,
                action: "webhook.rotate_secret",
                target: "webhook:\(s.id)",
                details: ["grace_seconds": .number(Double(grace))]
            )
            guard try await store.webhookUpdate(s, audit: [audit]) else { throw WorkflowError(.notFound, "no webhook \(s.id)") }
            return try respond(WebhookWithSecret(webhook: Wire.webhook(s), secret: secret))
        }
        v1.get("/webhooks/:id/deliveries") { request, context in
            let principal = try context.authorize(.admin)
            let query = try queryParameters(request, allowed: ["status", "limit", "cursor"])
            let s = try await webhook(context, principal.tenantID)
            let limit = try pageSize(request)
            let items = try await store.deliveryList(
                DeliveryFilter(
                    tenantID: principal.tenantID,
                    subscriptionID: s.id,
                    status: try deliveryStatus(query),
                    before: query.get("cursor"),
                    limit: limit
                )
            )
            return try respond(Page(items: items.map { Wire.delivery($0) }, nextCursor: items.count == limit ? items.last?.id : nil))
        }
        v1.get("/webhook-deliveries") { request, context in
            let principal = try context.authorize(.admin)
            let query = try queryParameters(request, allowed: ["status", "limit", "cursor"])
            let limit = try pageSize(request)
            let items = try await store.deliveryList(
                DeliveryFilter(tenantID: principal.tenantID, status: try deliveryStatus(query), before: query.get("cursor"), limit: limit)
            )
            return try respond(Page(items: items.map { Wire.delivery($0) }, nextCursor: items.count == limit ? items.last?.id : nil))
        }
        v1.get("/webhook-deliveries/:id") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            let id = try context.parameters.require("id")
            guard let (delivery, attempts) = try await store.deliveryGet(tenantID: principal.tenantID, id: id) else {
                throw WorkflowError(.notFound, "no delivery \(id.prefix(100))")
            }
            return try respond(Wire.delivery(delivery, attempts: attempts))
        }
        v1.post("/webhook-deliveries/redeliver") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            var ids: [String] = []
            var webhookID: String?
            var status: WebhookDelivery.Status?
            _ = try await commentedBody(request, allowEmpty: false, extra: ["ids", "webhook_id", "status"]) { fields, issues in
                if let list = fields["ids"] {
                    if let items = list.arrayValue, items.count <= 1000, items.allSatisfy({ $0.stringValue != nil }) {
                        ids = items.compactMap(\.stringValue)
                    } else {
                        issues.append(
                            ValidationIssue(pointer: JSONPointer.root.appending("ids"), message: "must be an array of at most 1000 delivery ids")
                        )
                    }
                }
                webhookID = fields["webhook_id"]?.stringValue
                if let text = fields["status"] {
                    if let s = text.stringValue.flatMap(WebhookDelivery.Status.init(rawValue:)), s != .pending {
                        status = s
                    } else {
                        issues.append(ValidationIssue(pointer: JSONPointer.root.appending("status"), message: "must be failed or succeeded"))
                    }
                }
                if fields["ids"] == nil && webhookID == nil {
                    issues.append(ValidationIssue(pointer: .root, message: "needs ids, or webhook_id (with status, default failed)"))
                }
            }
            if let webhookID {
                // Many at once: every finished delivery of the subscription in that status (the newest 1000).
                ids += try await store.deliveryList(
                    DeliveryFilter(tenantID: principal.tenantID, subscriptionID: webhookID, status: status ?? .failed, limit: 1000)
                ).map(\.id)
            }
            let now = clock.now()
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: now,
                context: context.audit,
                action: "webhook.redeliver",
                target: webhookID.map { "webhook:\($0)" },
                details: ["deliveries": .number(Double(ids.count))]
            )
            let count = try await store.deliveryRedeliver(tenantID: principal.tenantID, ids: ids, at: now, audit: [audit])
            return try respond(["redelivered": JSONValue.number(Double(count))] as JSONValue)
        }
    }

    func webhook(_ context: APIRequestContext, _ tenantID: String) async throws -> WebhookSubscription {
        let id = try context.parameters.require("id")
        guard id.utf8.count <= 100, let s = try await store.webhookGet(tenantID: tenantID, id: id) else {
            throw WorkflowError(.notFound, "no webhook \(id.prefix(100))")
        }
        return s
    }

    func deliveryStatus(_ query: Parameters) throws -> WebhookDelivery.Status? {
        guard let text = query.get("status") else { return nil }
        guard let status = WebhookDelivery.Status(rawValue: text) else {
            throw WorkflowError(.invalidRequest, "status must be one of pending, succeeded, failed")
        }
        return status
    }
}

/// The fields of a webhook create or update request, validated with every problem at its pointer.
struct WebhookInput {
    var id: String?
    var url: String?
    var eventTypes: [String]?
    var description: String?
    var secret: String?
    var enabled: Bool?

    init(_ fields: [String: JSONValue], creating: Bool) throws {
        var issues: [ValidationIssue] = []
        func issue(_ key: String, _ message: String) { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message)) }
        let allowed: Set<String> =
            creating ? ["id", "url", "event_types", "description", "secret", "enabled"] : ["url", "event_types", "description", "enabled"]
        for key in fields.keys.sorted() where !allowed.contains(key) { issue(key, "unknown field '\(key.prefix(50))'") }
        if let value = fields["id"] {
            if let text = value.stringValue, !text.isEmpty, text.utf8.count <= 64,
                text.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" })
            {
                id = text
            } else {
                issue("id", "must be 1-64 letters, digits, '-' or '_'")
            }
        }
        if let value = fields["url"] {
            if let text = value.stringValue, text.utf8.count <= 2048, let components = URLComponents(string: text),
                ["http", "https"].contains(components.scheme?.lowercased() ?? ""), !(components.host ?? "").isEmpty, components.user == nil
            {
                url = text
            } else {
                issue("url", "must be an http or https URL with a host (and no credentials), at most 2048 bytes")
            }
        } else if creating {
            issue("url", "is required")
        }
        if let value = fields["event_types"] {
            if let items = value.arrayValue, !items.isEmpty, items.count <= 20,
                items.allSatisfy({ $0.stringValue.map { $0 == "*" || OutboxEvent.types.contains($0) } ?? false })
            {
                eventTypes = Array(Set(items.compactMap(\.stringValue))).sorted()
            } else {
                issue("event_types", "must be a non-empty array of: *, \(OutboxEvent.types.joined(separator: ", "))")
            }
        }
        if let value = fields["description"] {
            if let text = value.stringValue, text.utf8.count <= 1000 {
                description = text
            } else {
                issue("description", "must be a string of at most 1000 bytes")
            }
        }
        if let value = fields["secret"] {
            if let text = value.stringValue, text.hasPrefix("whsec_"), let key = Data(base64Encoded: String(text.dropFirst(6))),
                (24...64).contains(key.count)
            {
                secret = text
            } else {
                issue("secret", "must be whsec_ followed by 24 to 64 bytes in base64 (or leave it out: one is made)")
            }
        }
        if let value = fields["enabled"] {
            if case .bool(let b) = value { enabled = b } else { issue("enabled", "must be a boolean") }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the webhook is invalid", issues: issues) }
    }
}
