import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import WorkflowObservability
import WorkflowPrimitive
import WorkflowStore

/// Moves events from the outbox to webhook endpoints, on the leader: it numbers each event in its tenant's stream,
/// creates a delivery per matching subscription, and sends deliveries signed as the Standard Webhooks specification
/// says, retrying on its schedule.
///
/// Delivery is at least once: an attempt whose answer was not recorded (a crash, a timeout) is sent again with the
/// same `webhook-id`, which receivers use to drop duplicates. Only a 2xx answer is a success; redirects are not
/// followed; 410 Gone turns the subscription off; `Retry-After` is honoured (up to a day).
public final class EventRelay: Service, Sendable {
    public struct Configuration: Sendable {
        public var pollInterval: Duration
        /// Waits before the second, third, … attempt (the first is immediate): Standard Webhooks' schedule by default.
        public var retrySchedule: [Duration]
        public var attemptTimeout: Duration
        public var concurrency: Int
        /// Dispatched events are kept this long for live streams to resume from (`Last-Event-ID`).
        public var retention: Duration

        public init(
            pollInterval: Duration = .milliseconds(100),
            retrySchedule: [Duration] = [
                .seconds(5), .seconds(300), .seconds(1800), .seconds(7200), .seconds(18000), .seconds(36000), .seconds(36000),
            ],
            attemptTimeout: Duration = .seconds(15),
            concurrency: Int = 16,
            retention: Duration = .seconds(86_400)
        ) {
            self.pollInterval = pollInterval
            self.retrySchedule = retrySchedule
            self.attemptTimeout = attemptTimeout
            self.concurrency = concurrency
            self.retention = retention
        }

        /// Reads a schedule written as `5s,5m,30m,2h` (units s, m, h).
        public static func parseSchedule(_ text: String) -> [Duration]? {
            var result: [Duration] = []
            for part in text.split(separator: ",") {
                let p = part.trimmingCharacters(in: .whitespaces)
                guard let unit = p.last, let n = Double(p.dropLast()), n >= 0, n <= 86_400 * 7 else { return nil }
                switch unit {
                case "s": result.append(.milliseconds(Int64(n * 1000)))
                case "m": result.append(.milliseconds(Int64(n * 60_000)))
                case "h": result.append(.milliseconds(Int64(n * 3_600_000)))
                default: return nil
                }
            }
            return result.isEmpty || result.count > 20 ? nil : result
        }
    }

    public static let maxResponseExcerpt = 1024

    private let store: any WorkflowStore
    private let http: HTTPClient
    private let egress: EgressPolicy
    private let masterKeys: MasterKeyring?
    private let isLeader: @Sendable () -> Bool
    private let clock: any WorkflowClock
    private let configuration: Configuration
    private let logger: Logger
    private let settings = Mutex<[String: (at: Date, value: TenantSettings)]>([:])
    private let lastPurge = Mutex(Date.distantPast)

    /// `http` must not follow redirects (`HTTPRequestStepExecutor.makeClient()`).
    /// Counts attempts by outcome (nil: not measured).
    let metrics: WorkflowMetrics?

    public init(
        store: any WorkflowStore,
        http: HTTPClient,
        egress: EgressPolicy,
        masterKeys: MasterKeyring?,
        isLeader: @escaping @Sendable () -> Bool,
        clock: any WorkflowClock = SystemClock(),
        configuration: Configuration = .init(),
        metrics: WorkflowMetrics? = nil,
        logger: Logger
    ) {
        self.metrics = metrics
        self.store = store
        self.http = http
        self.egress = egress
        self.masterKeys = masterKeys
        self.isLeader = isLeader
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        await whileLeading(isLeader, every: configuration.pollInterval, logger: logger, failure: "events could not be relayed; will retry") {
            let dispatched = try await self.dispatch()
            let delivered = try await self.deliverDue()
            try await self.purge()
            return dispatched || delivered
        }
    }

    /// Numbers undispatched events and creates their deliveries; true when there may be more.
    @discardableResult
    public func dispatch() async throws -> Bool {
        let events = try await store.outboxPending(limit: 500)
        guard !events.isEmpty else { return false }
        // Read afresh for every batch: an event committed after a subscription was created must reach it, and a
        // cached list could predate the subscription. (One small query per batch of events.)
        let subscriptions = try await store.webhooksActive()
        let now = clock.now()
        var deliveries: [WebhookDelivery] = []
        for event in events {
            let matching = subscriptions.filter { $0.tenantID == event.tenantID && $0.wants(event.type) }
            guard !matching.isEmpty else { continue }
            let body = event.json.canonicalString()
            for s in matching {
                deliveries.append(
                    WebhookDelivery(
                        id: RecordID.make(now: now),
                        tenantID: event.tenantID,
                        subscriptionID: s.id,
                        eventID: event.id,
                        eventType: event.type,
                        body: body,
                        status: .pending,
                        attempts: 0,
                        nextAttemptAt: now,
                        lastStatusCode: nil,
                        lastError: nil,
                        createdAt: now,
                        updatedAt: now
                    )
                )
            }
        }
        try await store.outboxDispatch(events, deliveries: deliveries)
        return events.count == 500
    }

    /// Attempts the deliveries that are due; true when there may be more.
    @discardableResult
    public func deliverDue() async throws -> Bool {
        let due = try await store.deliveriesDue(before: clock.now(), limit: configuration.concurrency * 4)
        guard !due.isEmpty else { return false }
        var index = 0
        while index < due.count {
            let chunk = due[index..<min(due.count, index + configuration.concurrency)]
            index += chunk.count
            await withTaskGroup(of: Void.self) { group in
                for delivery in chunk {
                    group.addTask {
                        do {
                            try await self.attempt(delivery)
                        } catch {
                            self.logger.warning(
                                "a webhook attempt could not be recorded",
                                metadata: ["delivery": "\(delivery.id)", "error": "\(error)"]
                            )
                        }
                    }
                }
            }
        }
        return due.count == configuration.concurrency * 4
    }

    private func purge() async throws {
        let now = clock.now()
        guard lastPurge.withLock({ now.timeIntervalSince($0) > 60 }) else { return }
        lastPurge.withLock { $0 = now }
        let purged = try await store.outboxPurge(before: now.addingTimeInterval(-configuration.retention.seconds))
        if purged > 0 { logger.info("purged dispatched events past their retention", metadata: ["events": "\(purged)"]) }
    }

    private func tenantSettings(_ tenantID: String) async throws -> TenantSettings {
        let now = clock.now()
        if let cached = settings.withLock({ $0[tenantID].flatMap { now.timeIntervalSince($0.at) < 2 ? $0.value : nil } }) { return cached }
        let value = try await store.tenantGet(id: tenantID)?.settings ?? TenantSettings()
        settings.withLock { $0[tenantID] = (now, value) }
        return value
    }

    /// The signing secrets of a subscription, newest first (two while a rotated-out secret is still honoured).
    func secrets(of s: WebhookSubscription, now: Date) throws -> [String] {
        func open(_ text: String) throws -> String {
            guard let keyID = s.keyID else { return text }
            guard let keys = masterKeys else { throw WorkflowError(.masterKeyMissing, "this node has no master key to open webhook secrets") }
            let data = try keys.open(text, keyID: keyID, context: Self.secretContext(tenantID: s.tenantID, id: s.id))
            return String(decoding: data, as: UTF8.self)
        }
        var result = [try open(s.secret)]
        // The previous secret may be sealed by a master key retired since: then only the new one signs.
        if let previous = s.previousSecret, let until = s.previousSecretExpiresAt, until > now, let old = try? open(previous) { result.append(old) }
        return result
    }

    public static func secretContext(tenantID: String, id: String) -> String { "uwf-webhook\u{0}\(tenantID)\u{0}\(id)" }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each secret, space-separated (Standard Webhooks).
    public static func signature(id: String, timestamp: Int64, body: String, secrets: [String]) -> String {
        secrets.compactMap { secret -> String? in
            let encoded = secret.hasPrefix("whsec_") ? String(secret.dropFirst(6)) : secret
            guard let key = Data(base64Encoded: encoded) else { return nil }
            let mac = HMAC<SHA256>.authenticationCode(for: Data("\(id).\(timestamp).\(body)".utf8), using: SymmetricKey(data: key))
            return "v1," + Data(mac).base64EncodedString()
        }.joined(separator: " ")
    }

    /// A new signing secret: `whsec_` and 32 random bytes in base64.
    public static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return "whsec_" + Data((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    func attempt(_ d: WebhookDelivery) async throws {
        let now = clock.now()
        var next = d
        next.attempts += 1
        next.updatedAt = now
        guard let s = try await store.webhookGet(tenantID: d.tenantID, id: d.subscriptionID), s.status == .active else {
            next.status = .failed
            next.nextAttemptAt = nil
            next.lastError = "the subscription is disabled or deleted"
            try await store.deliveryRecord(
                WebhookAttempt(
                    deliveryID: d.id,
                    number: next.attempts,
                    at: now,
                    statusCode: nil,
                    latencyMs: 0,
                    error: next.lastError,
                    responseExcerpt: nil
                ),
                delivery: next,
                disable: nil
            )
            return
        }
        let started = ContinuousClock.now
        var statusCode: Int?
        var error: String?
        var excerpt: String?
        var retryAfter: Duration?
        if let refusal = await refusal(s.url, tenantID: s.tenantID) {
            error = refusal
        } else {
            do {
                let timestamp = Int64(now.timeIntervalSince1970)
                var request = HTTPClientRequest(url: s.url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.headers.add(name: "user-agent", value: "uwf-webhooks/1")
                request.headers.add(name: "webhook-id", value: d.eventID)
                request.headers.add(name: "webhook-timestamp", value: String(timestamp))
                request.headers.add(
                    name: "webhook-signature",
                    value: Self.signature(id: d.eventID, timestamp: timestamp, body: d.body, secrets: try secrets(of: s, now: now))
                )
                request.body = .bytes(ByteBuffer(string: d.body))
                let response = try await http.execute(request, timeout: .milliseconds(Int64(configuration.attemptTimeout.seconds * 1000)))
                statusCode = Int(response.status.code)
                var body = try await response.body.collect(upTo: 64 << 10)
                if let text = body.readString(length: min(body.readableBytes, Self.maxResponseExcerpt)) { excerpt = text }
                if let header = response.headers.first(name: "retry-after") { retryAfter = Self.retryAfter(header, now: now) }
            } catch is NIOTooManyBytesError {
                error = "the answer was larger than 64 KiB"
            } catch let e as HTTPClientError where e == .deadlineExceeded || e == .readTimeout || e == .connectTimeout {
                error = "no answer within \(configuration.attemptTimeout)"
            } catch let failure {
                error = String("\(failure)".prefix(300))
            }
        }
        let latency = Int((ContinuousClock.now - started).seconds * 1000)
        next.lastStatusCode = statusCode
        var disable: (reason: String, at: Date)?
        if let code = statusCode, (200..<300).contains(code) {
            next.status = .succeeded
            next.nextAttemptAt = nil
            next.lastError = nil
        } else if statusCode == 410 {
            next.status = .failed
            next.nextAttemptAt = nil
            next.lastError = "the endpoint answered 410 Gone: the subscription is disabled"
            disable = ("the endpoint answered 410 Gone", now)
        } else {
            next.lastError = error ?? "the endpoint answered \(statusCode ?? 0)"
            if next.attempts > configuration.retrySchedule.count {
                next.status = .failed
                next.nextAttemptAt = nil
            } else {
                var wait = configuration.retrySchedule[next.attempts - 1]
                if let retryAfter { wait = max(wait, min(retryAfter, .seconds(86_400))) }
                // Counted from the end of this attempt, as Retry-After is (from the answer, not from the request):
                // counted from its start, a slow attempt shortened the wait the endpoint asked for.
                next.nextAttemptAt = clock.now().addingTimeInterval(wait.seconds)
            }
        }
        let outcome =
            switch next.status {
            case .succeeded: "succeeded"
            case .failed: "failed"
            default: "retrying"
            }
        metrics?.webhookAttempt(outcome: outcome, duration: ContinuousClock.now - started)
        try await store.deliveryRecord(
            WebhookAttempt(
                deliveryID: d.id,
                number: next.attempts,
                at: now,
                statusCode: statusCode,
                latencyMs: latency,
                error: error ?? (next.status == .succeeded ? nil : next.lastError),
                responseExcerpt: excerpt
            ),
            delivery: next,
            disable: disable
        )
    }

    /// `Retry-After` in seconds or as an HTTP date.
    static func retryAfter(_ header: String, now: Date) -> Duration? {
        if let seconds = Int(header.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(secondsFromGMT: 0)
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: header) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }

    /// Why the egress policy forbids calling `url`, or nil.
    private func refusal(_ url: String, tenantID: String) async -> String? {
        guard let components = URLComponents(string: url), let rawHost = components.host, !rawHost.isEmpty else { return "the URL has no host" }
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        let port = components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
        let addresses = await Resolver.resolve(host, timeout: .seconds(5))
        guard !addresses.isEmpty else { return "\(host) does not resolve" }
        let settings = (try? await tenantSettings(tenantID)) ?? TenantSettings()
        return egress.refusal(
            host: host,
            port: port,
            addresses: addresses,
            allow: settings.egressAllow.compactMap(EgressRule.init),
            deny: settings.egressDeny.compactMap(EgressRule.init)
        ).map { "egress denied: \($0)" }
    }
}
