import Testing

@testable import WorkflowIdentity

/// Rate limits and lockouts with time passed in: no sleeps.
@Suite struct LimitsTests {
    let t0 = ContinuousClock.now

    @Test func aBucketAllowsAMinutesWorthThenRefillsSteadily() {
        var buckets = TokenBuckets()
        for i in 0..<60 {
            let decision = buckets.take("a", perMinute: 60, now: t0)
            #expect(decision.allowed, "request \(i) of a full bucket")
        }
        let refused = buckets.take("a", perMinute: 60, now: t0)
        #expect(!refused.allowed && refused.retryAfterSeconds == 1 && refused.remaining == 0)
        #expect(buckets.take("b", perMinute: 60, now: t0).allowed, "callers have their own buckets")
        // One token a second comes back.
        #expect(buckets.take("a", perMinute: 60, now: t0 + .milliseconds(1100)).allowed)
        #expect(!buckets.take("a", perMinute: 60, now: t0 + .milliseconds(1200)).allowed)
        let later = buckets.take("a", perMinute: 60, now: t0 + .seconds(30))
        #expect(later.allowed && later.remaining == 28, "\(later)")
        #expect(later.resetSeconds == 32, "seconds until full again: \(later.resetSeconds)")
    }

    @Test func theTrackedCallersAreBounded() {
        var buckets = TokenBuckets()
        buckets.maxCallers = 100
        for i in 0..<1000 { _ = buckets.take("caller-\(i)", perMinute: 10, now: t0 + .seconds(Int64(i * 10))) }
        #expect(buckets.take("caller-999", perMinute: 10, now: t0 + .seconds(9990)).remaining == 8, "a recent caller is still tracked")
    }

    @Test func repeatedFailuresLockASourceOutForAWhile() {
        var counts = FailureCounts(maxFailures: 5, window: .seconds(900), lockout: .seconds(900))
        for i in 0..<4 {
            #expect(counts.failed("10.0.0.1", now: t0 + .seconds(Int64(i))) == nil, "failure \(i + 1) does not lock yet")
        }
        #expect(counts.lockedFor("10.0.0.1", now: t0 + .seconds(4)) == nil)
        #expect(counts.failed("10.0.0.1", now: t0 + .seconds(5)) == .seconds(900), "the fifth locks for 15 minutes")
        #expect(counts.lockedFor("10.0.0.1", now: t0 + .seconds(65)) == .seconds(840))
        #expect(counts.lockedFor("10.0.0.2", now: t0 + .seconds(65)) == nil, "other sources are not affected")
        counts.succeeded("10.0.0.1")
        #expect(counts.lockedFor("10.0.0.1", now: t0 + .seconds(66)) != nil, "a success does not lift a lockout")
        #expect(counts.lockedFor("10.0.0.1", now: t0 + .seconds(906)) == nil, "it ends")
    }

    @Test func failuresOutsideTheWindowAndBeforeASuccessDoNotCount() {
        var counts = FailureCounts(maxFailures: 3, window: .seconds(60), lockout: .seconds(60))
        counts.failed("s", now: t0)
        counts.failed("s", now: t0 + .seconds(1))
        counts.succeeded("s")
        counts.failed("s", now: t0 + .seconds(2))
        #expect(counts.lockedFor("s", now: t0 + .seconds(2)) == nil, "a success cleared the earlier failures")
        counts.failed("s", now: t0 + .seconds(100))
        #expect(counts.failed("s", now: t0 + .seconds(200)) == nil, "failures a window apart never add up")
    }
}
