import Synchronization

/// Token buckets, one per caller: `perMinute` requests a minute, refilled continuously, bursts up to a minute's
/// worth. Pure (time is passed in); `RateLimiter` shares one under a lock.
public struct TokenBuckets: Sendable {
    /// What one request was told.
    public struct Decision: Sendable, Equatable {
        public var allowed: Bool
        public var limit: Int
        /// Whole requests left now.
        public var remaining: Int
        /// Seconds until the bucket is full again.
        public var resetSeconds: Int
        /// Seconds until one request is allowed again (refused requests only).
        public var retryAfterSeconds: Int?
    }

    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private var buckets: [String: Bucket] = [:]
    /// Most callers tracked; beyond it, full buckets are forgotten (they hold nothing a new one would not).
    public var maxCallers = 100_000

    public init() {}

    public mutating func take(_ caller: String, perMinute: Int, now: ContinuousClock.Instant) -> Decision {
        let capacity = Double(perMinute)
        let rate = capacity / 60  // tokens a second
        var bucket = buckets[caller] ?? Bucket(tokens: capacity, updated: now)
        let elapsed = max(0, Double((now - bucket.updated).components.seconds) + Double((now - bucket.updated).components.attoseconds) / 1e18)
        bucket.tokens = min(capacity, bucket.tokens + elapsed * rate)
        bucket.updated = now
        let allowed = bucket.tokens >= 1
        if allowed { bucket.tokens -= 1 }
        if buckets.count >= maxCallers, buckets[caller] == nil { forgetFull(now: now, rate: rate, capacity: capacity) }
        buckets[caller] = bucket
        let reset = Int(((capacity - bucket.tokens) / rate).rounded(.up))
        let retry = allowed ? nil : max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
        return Decision(allowed: allowed, limit: perMinute, remaining: Int(bucket.tokens), resetSeconds: reset, retryAfterSeconds: retry)
    }

    private mutating func forgetFull(now: ContinuousClock.Instant, rate: Double, capacity: Double) {
        buckets = buckets.filter { _, b in
            let seconds = Double((now - b.updated).components.seconds)
            return b.tokens + seconds * rate < capacity
        }
        if buckets.count >= maxCallers { buckets.removeAll() }  // still full of busy callers: start over rather than grow
    }
}

/// Rate limits per principal (per node: each node of a cluster counts its own requests).
public final class RateLimiter: Sendable {
    private let buckets = Mutex(TokenBuckets())
    /// Requests a minute for a caller without its own limit; 0 turns limiting off.
    public let defaultPerMinute: Int

    public init(defaultPerMinute: Int) { self.defaultPerMinute = defaultPerMinute }

    /// Takes one request for `caller`; nil when limiting is off.
    public func take(_ caller: String, perMinute: Int? = nil) -> TokenBuckets.Decision? {
        let limit = perMinute ?? defaultPerMinute
        guard limit > 0 else { return nil }
        let now = ContinuousClock.now
        return buckets.withLock { $0.take(caller, perMinute: limit, now: now) }
    }
}

/// Failed authentications per source address: after `maxFailures` within `window`, the source is refused for
/// `lockout` whatever it presents (the original design: 5 failures, 15 minutes). Pure; `LoginGuard` shares it.
public struct FailureCounts: Sendable {
    private struct Source {
        var failures: [ContinuousClock.Instant] = []
        var lockedUntil: ContinuousClock.Instant?
    }

    public var maxFailures: Int
    public var window: Duration
    public var lockout: Duration
    private var sources: [String: Source] = [:]
    public var maxSources = 100_000

    public init(maxFailures: Int = 5, window: Duration = .seconds(900), lockout: Duration = .seconds(900)) {
        self.maxFailures = maxFailures
        self.window = window
        self.lockout = lockout
    }

    /// How long `source` stays locked out, or nil when it may try.
    public func lockedFor(_ source: String, now: ContinuousClock.Instant) -> Duration? {
        guard let until = sources[source]?.lockedUntil, until > now else { return nil }
        return until - now
    }

    /// Records a failure; returns the lockout it started, if it did.
    @discardableResult
    public mutating func failed(_ source: String, now: ContinuousClock.Instant) -> Duration? {
        if sources.count >= maxSources, sources[source] == nil {
            sources = sources.filter { _, s in (s.lockedUntil.map { $0 > now } ?? false) || s.failures.contains { now - $0 < window } }
            if sources.count >= maxSources { sources.removeAll() }
        }
        var entry = sources[source] ?? Source()
        entry.failures = entry.failures.filter { now - $0 < window } + [now]
        if entry.failures.count >= maxFailures {
            entry.failures = []
            entry.lockedUntil = now + lockout
        }
        sources[source] = entry
        return entry.lockedUntil.map { $0 > now ? $0 - now : nil } ?? nil
    }

    /// A success clears the source's failures.
    public mutating func succeeded(_ source: String) {
        if sources[source]?.lockedUntil == nil { sources[source] = nil }
    }
}

/// `FailureCounts` under a lock, on the real clock.
public final class LoginGuard: Sendable {
    private let counts: Mutex<FailureCounts>

    public init(maxFailures: Int = 5, window: Duration = .seconds(900), lockout: Duration = .seconds(900)) {
        counts = Mutex(FailureCounts(maxFailures: maxFailures, window: window, lockout: lockout))
    }

    public func lockedFor(_ source: String) -> Duration? {
        let now = ContinuousClock.now
        return counts.withLock { $0.lockedFor(source, now: now) }
    }

    public func failed(_ source: String) {
        let now = ContinuousClock.now
        counts.withLock { _ = $0.failed(source, now: now) }
    }

    public func succeeded(_ source: String) { counts.withLock { $0.succeeded(source) } }
}
