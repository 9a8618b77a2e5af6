import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive

// Webhooks, deliveries and live events.
extension WorkflowClient {
    // MARK: webhooks and live events

    public func createWebhook(_ fields: JSONValue) async throws -> WebhookWithSecret {
        let (_, response) = try await send(.POST, "/api/v1/webhooks", body: Data(fields.canonicalString().utf8), contentType: "application/json")
        return try decode(WebhookWithSecret.self, response)
    }

    public func updateWebhook(_ id: String, _ fields: JSONValue) async throws -> WebhookInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/webhooks/\(escape(id))",
            body: Data(fields.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(WebhookInfo.self, response)
    }

    public func webhooks() async throws -> Page<WebhookInfo> { try decode(Page<WebhookInfo>.self, try await get("/api/v1/webhooks")) }

    public func webhook(_ id: String) async throws -> WebhookInfo { try decode(WebhookInfo.self, try await get("/api/v1/webhooks/\(escape(id))")) }

    public func deleteWebhook(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/webhooks/\(escape(id))", body: nil, contentType: nil)
    }

    public func rotateWebhookSecret(_ id: String, graceSeconds: Int?) async throws -> WebhookWithSecret {
        let body: JSONValue = graceSeconds.map { ["grace_seconds": .number(Double($0))] } ?? .object([:])
        let (_, response) = try await send(
            .POST,
            "/api/v1/webhooks/\(escape(id))/rotate-secret",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(WebhookWithSecret.self, response)
    }

    /// Deliveries, newest first: of one webhook, or of all.
    public func webhookDeliveries(
        webhook: String? = nil,
        status: String? = nil,
        limit: Int? = nil,
        cursor: String? = nil
    ) async throws
        -> Page<WebhookDeliveryInfo>
    {
        let path = webhook.map { "/api/v1/webhooks/\(escape($0))/deliveries" } ?? "/api/v1/webhook-deliveries"
        return try decode(
            Page<WebhookDeliveryInfo>.self,
            try await get(path, query: ["status": status, "limit": limit.map(String.init), "cursor": cursor])
        )
    }

    public func webhookDelivery(_ id: String) async throws -> WebhookDeliveryInfo {
        try decode(WebhookDeliveryInfo.self, try await get("/api/v1/webhook-deliveries/\(escape(id))"))
    }

    /// Redelivers deliveries by id, or every one of a webhook in `status` (default failed); returns how many.
    public func redeliver(ids: [String], webhook: String?, status: String?) async throws -> Int {
        var body: [String: JSONValue] = [:]
        if !ids.isEmpty { body["ids"] = .array(ids.map(JSONValue.string)) }
        if let webhook { body["webhook_id"] = .string(webhook) }
        if let status { body["status"] = .string(status) }
        let (_, response) = try await send(
            .POST,
            "/api/v1/webhook-deliveries/redeliver",
            body: Data(JSONValue.object(body).canonicalString().utf8),
            contentType: "application/json"
        )
        return Int(try decode(JSONValue.self, response)["redelivered"]?.numberValue ?? 0)
    }

    /// One Server-Sent Event.
    public struct StreamEvent: Sendable {
        public var id: String?
        public var type: String?
        public var data: String
    }

    /// Follows a Server-Sent Events stream (`/api/v1/events`, `/api/v1/executions/{id}/events`), reconnecting after
    /// the last event seen when the server ends the stream, until `handle` returns false or, with
    /// `endWhenClosed`, the server closes a stream that has ended for good (a finished run's).
    public func follow(
        _ path: String,
        after: String? = nil,
        endWhenClosed: Bool = false,
        _ handle: @Sendable (StreamEvent) async throws -> Bool
    ) async throws {
        var lastID = after
        while !Task.isCancelled {
            var request = HTTPClientRequest(url: baseURL + path)
            request.headers.add(name: "Accept", value: "text/event-stream")
            if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            if let lastID { request.headers.add(name: "Last-Event-ID", value: lastID) }
            let response: HTTPClientResponse
            do {
                response = try await http.execute(request, timeout: .hours(24))
            } catch {
                throw WorkflowError(.unavailable, "cannot reach the uwf server at \(baseURL): \(error)")
            }
            guard response.status == .ok else {
                let data = Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                if let problem = try? WireCoding.decode(Problem.self, from: data) { throw problem.workflowError }
                throw WorkflowError(WorkflowError.Code(rawValue: "http_\(response.status.code)"), "HTTP \(response.status.code)")
            }
            var buffer = ""
            var current = StreamEvent(id: nil, type: nil, data: "")
            for try await chunk in response.body {
                buffer += String(buffer: chunk)
                while let newline = buffer.firstIndex(of: "\n") {
                    let line = String(buffer[..<newline])
                    buffer = String(buffer[buffer.index(after: newline)...])
                    if line.isEmpty {
                        if !current.data.isEmpty {
                            if let id = current.id { lastID = id }
                            guard try await handle(current) else { return }
                        }
                        current = StreamEvent(id: nil, type: nil, data: "")
                    } else if line.hasPrefix("id: ") {
                        current.id = String(line.dropFirst(4))
                    } else if line.hasPrefix("event: ") {
                        current.type = String(line.dropFirst(7))
                    } else if line.hasPrefix("data: ") {
                        current.data += String(line.dropFirst(6))
                    }
                }
            }
            if endWhenClosed { return }
        }
    }
}
