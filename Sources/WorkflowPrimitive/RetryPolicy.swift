import Foundation

/// How a failed step attempt is retried.
public struct RetryPolicy: Sendable, Hashable {
    public enum Backoff: String, Sendable, Hashable {
        case fixed
        case exponential
    }

    /// Total attempts, the first included. 1 means no retry.
    public var maxAttempts: Int
    public var backoff: Backoff
    public var initialIntervalMs: Int
    public var maxIntervalMs: Int
    /// Growth factor of exponential backoff.
    public var multiplier: Double
    /// Spreads each interval uniformly over [interval/2, interval] so retries of many runs do not align.
    public var jitter: Bool

    public static let none = RetryPolicy(maxAttempts: 1)

    public init(
        maxAttempts: Int,
        backoff: Backoff = .exponential,
        initialIntervalMs: Int = 1000,
        maxIntervalMs: Int = 60_000,
        multiplier: Double = 2,
        jitter: Bool = false
    ) {
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.initialIntervalMs = initialIntervalMs
        self.maxIntervalMs = maxIntervalMs
        self.multiplier = multiplier
        self.jitter = jitter
    }

    /// The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed.
    /// - Parameter random: a number in [0, 1), injected so the result is deterministic under test.
    public func delayMs(afterAttempt attempt: Int, random: Double) -> Int {
        var interval = Double(initialIntervalMs)
        if backoff == .exponential {
            interval *= pow(multiplier, Double(max(0, attempt - 1)))
        }
        interval = min(interval, Double(maxIntervalMs))
        if jitter {
            interval = interval / 2 + interval / 2 * random
        }
        return Int(interval.rounded())
    }
}
