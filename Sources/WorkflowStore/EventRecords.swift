import Foundation
import WorkflowPrimitive

/// An event for subscribers (webhooks, live streams), written to the outbox in the transaction of the change it
/// reports, so that a crash can neither lose one nor invent one.
///
/// Types: `run.started|completed|failed|cancelled` and `step.failed` (top-level runs), `approval.requested|decided`,
/// `definition.activated`, `schedule.fired`. The payload names what changed (ids, statuses, error codes), never a
/// run's input or output: subscribers read those through the API, with their own credentials.
public struct OutboxEvent: Sendable, Hashable {
    public var id: String
    public var tenantID: String
    public var type: String
    public var at: Date
    /// What the event is about (a run id, a definition id, a schedule id), for correlating events.
    public var correlationID: String?
    public var payload: JSONValue
    /// The place in the tenant-wide stream, assigned when the event is dispatched (nil before).
    public var seq: Int64?

    public init(id: String, tenantID: String, type: String, at: Date, correlationID: String?, payload: JSONValue, seq: Int64? = nil) {
        self.id = id
        self.tenantID = tenantID
        self.type = type
        self.at = at
        self.correlationID = correlationID
        self.payload = payload
        self.seq = seq
    }

    public static let types = [
        "run.started", "run.completed", "run.failed", "run.cancelled", "step.failed", "approval.requested", "approval.decided",
        "definition.activated", "schedule.fired",
    ]

    /// The event as subscribers receive it (the original design's schema).
    public var json: JSONValue {
        [
            "event_id": .string(id), "event_type": .string(type), "timestamp": .string(Self.format(at)),
            "correlation_id": correlationID.map(JSONValue.string) ?? .null, "payload": payload,
            "metadata": ["tenant_id": .string(tenantID), "source": "uwf", "schema_version": "1"],
        ]
    }

    /// A schedule started a run (written by the store with the fire, for the fire times that were free).
    public static func scheduleFired(
        tenantID: String,
        scheduleID: String,
        scheduledAt: Int64,
        runID: String,
        workflow: String,
        at: Date
    )
        -> OutboxEvent
    {
        OutboxEvent(
            id: RecordID.make(now: at),
            tenantID: tenantID,
            type: "schedule.fired",
            at: at,
            correlationID: runID,
            payload: [
                "schedule_id": .string(scheduleID), "run_id": .string(runID), "workflow": .string(workflow),
                "scheduled_at": .string(format(Date(timeIntervalSince1970: Double(scheduledAt) / 1000))),
            ]
        )
    }

    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    static func format(_ date: Date) -> String { date.formatted(style) }
}

/// A tenant's webhook endpoint.
public struct WebhookSubscription: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case active
        /// Turned off by its owner, or by the endpoint answering 410 Gone; no deliveries until enabled again.
        case disabled
    }

    public var tenantID: String
    public var id: String
    public var url: String
    /// Event types delivered (`*` for all).
    public var eventTypes: [String]
    /// The signing secret (`whsec_…`), sealed by the master key when the node has one (`keyID` names it).
    public var secret: String
    public var keyID: String?
    /// The secret before the last rotation: deliveries are signed with both until `previousSecretExpiresAt`.
    public var previousSecret: String?
    public var previousSecretExpiresAt: Date?
    public var status: Status
    public var disabledReason: String?
    public var description: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var createdBy: String?

    public init(
        tenantID: String,
        id: String,
        url: String,
        eventTypes: [String],
        secret: String,
        keyID: String?,
        previousSecret: String? = nil,
        previousSecretExpiresAt: Date? = nil,
        status: Status = .active,
        disabledReason: String? = nil,
        description: String? = nil,
        createdAt: Date,
        updatedAt: Date,
        createdBy: String?
    ) {
        self.tenantID = tenantID
        self.id = id
        self.url = url
        self.eventTypes = eventTypes
        self.secret = secret
        self.keyID = keyID
        self.previousSecret = previousSecret
        self.previousSecretExpiresAt = previousSecretExpiresAt
        self.status = status
        self.disabledReason = disabledReason
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
    }

    public func wants(_ type: String) -> Bool { eventTypes.contains("*") || eventTypes.contains(type) }
}

/// One event to one subscription, until it succeeds or runs out of attempts.
public struct WebhookDelivery: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case pending
        case succeeded
        /// Out of attempts (or the endpoint is gone): a dead letter, redelivered only by hand.
        case failed
    }

    public var id: String
    public var tenantID: String
    public var subscriptionID: String
    public var eventID: String
    public var eventType: String
    /// The exact body sent (the event's JSON), kept so every attempt signs the same bytes.
    public var body: String
    public var status: Status
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastStatusCode: Int?
    public var lastError: String?
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String,
        tenantID: String,
        subscriptionID: String,
        eventID: String,
        eventType: String,
        body: String,
        status: Status,
        attempts: Int,
        nextAttemptAt: Date?,
        lastStatusCode: Int?,
        lastError: String?,
        createdAt: Date,
        updatedAt: Date
    ) {
        self.id = id
        self.tenantID = tenantID
        self.subscriptionID = subscriptionID
        self.eventID = eventID
        self.eventType = eventType
        self.body = body
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One try of a delivery: what the endpoint answered, or why there was no answer.
public struct WebhookAttempt: Sendable, Hashable {
    public var deliveryID: String
    public var number: Int
    public var at: Date
    public var statusCode: Int?
    public var latencyMs: Int
    public var error: String?
    /// The first bytes of the answer (at most 1 KiB).
    public var responseExcerpt: String?

    public init(deliveryID: String, number: Int, at: Date, statusCode: Int?, latencyMs: Int, error: String?, responseExcerpt: String?) {
        self.deliveryID = deliveryID
        self.number = number
        self.at = at
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
        self.responseExcerpt = responseExcerpt
    }
}

/// Selects deliveries to list or redeliver.
public struct DeliveryFilter: Sendable {
    public var tenantID: String
    public var subscriptionID: String?
    public var status: WebhookDelivery.Status?
    /// Deliveries with ids before this one (a cursor; ids sort by creation).
    public var before: String?
    public var limit: Int

    public init(tenantID: String, subscriptionID: String? = nil, status: WebhookDelivery.Status? = nil, before: String? = nil, limit: Int = 50) {
        self.tenantID = tenantID
        self.subscriptionID = subscriptionID
        self.status = status
        self.before = before
        self.limit = limit
    }
}

/// A version of a tenant's message template (Mustache), for `notify` steps.
public struct MessageTemplate: Sendable, Hashable {
    public var tenantID: String
    public var name: String
    public var version: Int
    public var subject: String?
    public var body: String
    public var description: String?
    public var createdAt: Date
    public var createdBy: String?

    public init(
        tenantID: String,
        name: String,
        version: Int,
        subject: String?,
        body: String,
        description: String?,
        createdAt: Date,
        createdBy: String?
    ) {
        self.tenantID = tenantID
        self.name = name
        self.version = version
        self.subject = subject
        self.body = body
        self.description = description
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// The outbox, webhook subscriptions and their deliveries; message templates.
public protocol EventStore: Sendable {
    /// Adds the next version of a template (1 for a new name) and returns it.
    /// - Throws: `quota_exceeded` past `quotas.templatesPerTenant` names or `quotas.versionsPerTemplate` versions.
    func templateAdd(_ template: MessageTemplate, audit: [AuditRecord], quotas: StoreQuotas) async throws -> MessageTemplate
    /// A version of a template, or its latest when `version` is nil.
    func templateGet(tenantID: String, name: String, version: Int?) async throws -> MessageTemplate?
    /// The latest version of each template of a tenant, by name, after the name `after`.
    func templateList(tenantID: String, after: String?, limit: Int) async throws -> [MessageTemplate]

    /// Events not dispatched yet (oldest first), of every tenant.
    func outboxPending(limit: Int) async throws -> [OutboxEvent]
    /// In one transaction: numbers `events` in the tenant-wide stream (in order) and creates `deliveries` (a
    /// delivery of the same event to the same subscription is created once).
    func outboxDispatch(_ events: [OutboxEvent], deliveries: [WebhookDelivery]) async throws
    /// Dispatched events of a tenant after `afterSeq`, in stream order (live streams; `Last-Event-ID`).
    func eventsAfter(tenantID: String, afterSeq: Int64, limit: Int) async throws -> [OutboxEvent]
    /// The newest stream number of the tenant (0 when none).
    func eventsHead(tenantID: String) async throws -> Int64
    /// Deletes dispatched events older than `before`; returns how many (a leader duty).
    func outboxPurge(before: Date) async throws -> Int

    /// False when the tenant has a webhook with this id.
    /// - Throws: `quota_exceeded` when the tenant has `quotas.webhooksPerTenant` already.
    func webhookInsert(_ subscription: WebhookSubscription, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool
    func webhookGet(tenantID: String, id: String) async throws -> WebhookSubscription?
    func webhookList(tenantID: String) async throws -> [WebhookSubscription]
    /// Every active subscription of every tenant (the dispatcher's view).
    func webhooksActive() async throws -> [WebhookSubscription]
    func webhookUpdate(_ subscription: WebhookSubscription, audit: [AuditRecord]) async throws -> Bool
    func webhookDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool
    /// Replaces a subscription's sealed secrets (re-wrapped under a new master key) only if they are still `old`'s (a
    /// concurrent rotation of the secret wins); nothing else of the subscription changes. True when replaced.
    func webhookRewrap(old: WebhookSubscription, keyID: String, secret: String, previousSecret: String?) async throws -> Bool

    /// Pending deliveries whose next attempt is due, oldest first.
    func deliveriesDue(before: Date, limit: Int) async throws -> [WebhookDelivery]
    /// Records an attempt and the delivery's new state together; with `disable`, turns the subscription off too
    /// (the endpoint answered 410 Gone).
    func deliveryRecord(_ attempt: WebhookAttempt, delivery: WebhookDelivery, disable: (reason: String, at: Date)?) async throws
    func deliveryList(_ filter: DeliveryFilter) async throws -> [WebhookDelivery]
    func deliveryGet(tenantID: String, id: String) async throws -> (WebhookDelivery, [WebhookAttempt])?
    /// Makes finished deliveries pending again, due now; returns how many.
    func deliveryRedeliver(tenantID: String, ids: [String], at: Date, audit: [AuditRecord]) async throws -> Int
}
