import WorkflowPrimitive

/// A webhook subscription as listed (never its secret).
public struct WebhookInfo: PageItem, Hashable {
    public static let pageKey = "webhooks"
    public var id: String
    public var url: String
    public var eventTypes: [String]
    /// `active` or `disabled` (by its owner, or by the endpoint answering 410 Gone: see `disabled_reason`).
    public var status: String
    @Nullable public var disabledReason: String?
    @Nullable public var description: String?
    /// Until when deliveries are also signed with the secret before the last rotation.
    @Nullable public var previousSecretExpiresAt: String?
    public var createdAt: String
    public var updatedAt: String
    @Nullable public var createdBy: String?

    public init(
        id: String,
        url: String,
        eventTypes: [String],
        status: String,
        disabledReason: String?,
        description: String?,
        previousSecretExpiresAt: String?,
        createdAt: String,
        updatedAt: String,
        createdBy: String?
    ) {
        self.id = id
        self.url = url
        self.eventTypes = eventTypes
        self.status = status
        self.disabledReason = disabledReason
        self.description = description
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
    }

    enum CodingKeys: String, CodingKey {
        case id, url, status, description
        case eventTypes = "event_types"
        case disabledReason = "disabled_reason"
        case previousSecretExpiresAt = "previous_secret_expires_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case createdBy = "created_by"
    }
}

/// The answer to creating a subscription or rotating its secret: the secret is shown this once.
public struct WebhookWithSecret: Codable, Sendable, Hashable {
    public var webhook: WebhookInfo
    public var secret: String

    public init(webhook: WebhookInfo, secret: String) {
        self.webhook = webhook
        self.secret = secret
    }
}

/// One attempt of a delivery.
public struct WebhookAttemptInfo: Codable, Sendable, Hashable {
    public var number: Int
    public var at: String
    @Nullable public var statusCode: Int?
    public var latencyMs: Int
    @Nullable public var error: String?
    @Nullable public var responseExcerpt: String?

    public init(number: Int, at: String, statusCode: Int?, latencyMs: Int, error: String?, responseExcerpt: String?) {
        self.number = number
        self.at = at
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
        self.responseExcerpt = responseExcerpt
    }

    enum CodingKeys: String, CodingKey {
        case number, at, error
        case statusCode = "status_code"
        case latencyMs = "latency_ms"
        case responseExcerpt = "response_excerpt"
    }
}

/// A delivery of one event to one subscription; `attempt_log` only when read by id.
public struct WebhookDeliveryInfo: PageItem, Hashable {
    public static let pageKey = "deliveries"
    public var id: String
    public var webhookID: String
    public var eventID: String
    public var eventType: String
    /// `pending`, `succeeded`, or `failed` (out of attempts, or the endpoint gone: a dead letter until redelivered).
    public var status: String
    public var attempts: Int
    @Nullable public var nextAttemptAt: String?
    @Nullable public var lastStatusCode: Int?
    @Nullable public var lastError: String?
    public var createdAt: String
    public var updatedAt: String
    public var attemptLog: [WebhookAttemptInfo]?

    public init(
        id: String,
        webhookID: String,
        eventID: String,
        eventType: String,
        status: String,
        attempts: Int,
        nextAttemptAt: String?,
        lastStatusCode: Int?,
        lastError: String?,
        createdAt: String,
        updatedAt: String,
        attemptLog: [WebhookAttemptInfo]?
    ) {
        self.id = id
        self.webhookID = webhookID
        self.eventID = eventID
        self.eventType = eventType
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.attemptLog = attemptLog
    }

    enum CodingKeys: String, CodingKey {
        case id, status, attempts
        case webhookID = "webhook_id"
        case eventID = "event_id"
        case eventType = "event_type"
        case nextAttemptAt = "next_attempt_at"
        case lastStatusCode = "last_status_code"
        case lastError = "last_error"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case attemptLog = "attempt_log"
    }
}

/// An event as live streams and webhooks carry it (the original design's event schema).
public struct EventInfo: PageItem, Hashable {
    public static let pageKey = "events"
    public var eventID: String
    public var eventType: String
    public var timestamp: String
    @Nullable public var correlationID: String?
    public var payload: JSONValue
    public var metadata: JSONValue

    public init(eventID: String, eventType: String, timestamp: String, correlationID: String?, payload: JSONValue, metadata: JSONValue) {
        self.eventID = eventID
        self.eventType = eventType
        self.timestamp = timestamp
        self.correlationID = correlationID
        self.payload = payload
        self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey {
        case timestamp, payload, metadata
        case eventID = "event_id"
        case eventType = "event_type"
        case correlationID = "correlation_id"
    }
}
