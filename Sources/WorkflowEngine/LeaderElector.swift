import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WorkflowStore

/// Runs `pass` while this node leads, every `interval`, or again at once when it says there is more to do; until
/// graceful shutdown. A failed pass is logged and tried again at the next interval. The loop of the leader's
/// services (`Scheduler`, `EventRelay`).
func whileLeading(
    _ isLeader: @escaping @Sendable () -> Bool,
    every interval: Duration,
    logger: Logger,
    failure: String,
    _ pass: @escaping @Sendable () async throws -> Bool
) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            var more = false
            if isLeader() {
                do {
                    more = try await pass()
                } catch  where !Task.isCancelled {
                    logger.warning("\(failure)", metadata: ["error": "\(error)"])
                } catch {}
            }
            if !more { try? await Task.sleep(for: interval) }
        }
    }
}

/// Elects one node of the cluster to run singleton duties, through a lease row in the database.
///
/// The leader renews its lease every `checkInterval`; when it dies, another node takes over once the lease has
/// expired (within `ttl + checkInterval`). On graceful shutdown the leader resigns, so the handover is immediate.
/// The duty today is housekeeping (forgetting nodes gone for long); the scheduler's trigger sweep joins it.
public final class LeaderElector: Service, Sendable {
    /// Settings of the election.
    public struct Configuration: Sendable {
        /// How long a leadership lasts without renewal.
        public var ttl: Duration
        /// How often every node tries to take or renew leadership.
        public var checkInterval: Duration
        /// Nodes not seen for this long are removed from the node list by the leader.
        public var nodeRetention: Duration

        /// Idempotency keys are freed this long after their run was created.
        public var idempotencyKeyRetention: Duration
        /// Finished runs are purged this long after they were created (nil: kept for ever). A batch per check.
        public var runRetention: Duration? = nil

        public init(
            ttl: Duration = .seconds(10),
            checkInterval: Duration = .seconds(2),
            nodeRetention: Duration = .seconds(3600),
            idempotencyKeyRetention: Duration = .seconds(24 * 3600),
            runRetention: Duration? = nil
        ) {
            self.ttl = ttl
            self.checkInterval = checkInterval
            self.nodeRetention = nodeRetention
            self.idempotencyKeyRetention = idempotencyKeyRetention
            self.runRetention = runRetention
        }
    }

    public static let sweeper = "sweeper"

    private let store: any WorkflowStore
    private let nodeID: String
    private let configuration: Configuration
    private let clock: any WorkflowClock
    private let logger: Logger
    private let leading = Mutex(false)

    public init(store: any WorkflowStore, nodeID: String, configuration: Configuration, clock: any WorkflowClock = SystemClock(), logger: Logger) {
        self.store = store
        self.nodeID = nodeID
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
    }

    /// Whether this node held leadership at its last check.
    public var isLeader: Bool { leading.withLock { $0 } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.check()
                try? await Task.sleep(for: self.configuration.checkInterval)
            }
        }
        if isLeader {
            try? await store.leaderResign(name: Self.sweeper, owner: nodeID)
            logger.info("resigned leadership")
        }
    }

    private func check() async {
        let now = clock.now()
        do {
            let elected = try await store.leaderAttemptElect(
                LeaderElectParams(
                    name: Self.sweeper,
                    owner: nodeID,
                    expiresAt: now.addingTimeInterval(configuration.ttl.seconds),
                    now: now
                )
            )
            let was = leading.withLock { value in
                defer { value = elected }
                return value
            }
            if elected != was { logger.notice(elected ? "became leader" : "lost leadership") }
            if elected { try await sweep(now: now) }
        } catch {
            leading.withLock { $0 = false }
            logger.error("leader election failed", metadata: ["error": "\(error)"])
        }
    }

    /// The singleton duties.
    private func sweep(now: Date) async throws {
        let removed = try await store.nodeDeleteStale(before: now.addingTimeInterval(-configuration.nodeRetention.seconds))
        if removed > 0 { logger.info("forgot nodes gone for long", metadata: ["count": "\(removed)"]) }
        let freed = try await store.idempotencyExpire(before: now.addingTimeInterval(-configuration.idempotencyKeyRetention.seconds))
        if freed > 0 { logger.info("freed expired idempotency keys", metadata: ["count": "\(freed)"]) }
        if let retention = configuration.runRetention {
            let purged = try await store.runPurge(createdBefore: now.addingTimeInterval(-retention.seconds), tenantID: nil, limit: 500)
            if purged > 0 { logger.info("purged finished runs past their retention", metadata: ["runs": "\(purged)"]) }
        }
    }
}
