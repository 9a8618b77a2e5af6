import Foundation
import WorkflowStore

/// Settings of the engine on one node. Every default works for a single `uwf serve`.
public struct EngineConfiguration: Sendable {
    /// This node's identity in leases and history; unique per process start.
    public var nodeID: String
    /// Step attempts executing at once on this node.
    public var maxConcurrentSteps: Int
    /// Most tasks claimed in one transaction.
    public var claimBatchSize: Int
    /// Most step completions written in one transaction (group commit).
    public var commitBatchSize: Int
    /// How long a claim holds a task without a heartbeat; a dead node's work is taken over after this.
    public var leaseDuration: Duration
    /// How often this node extends all its leases.
    public var heartbeatInterval: Duration
    /// The longest the claimer sleeps when it expects no work (a safety net: new work wakes it at once).
    public var pollInterval: Duration
    /// Step timeout when a step sets none (0 means none).
    public var defaultStepTimeout: Duration
    /// How long an `Idempotency-Key` keeps answering with its run (the leader frees older keys).
    public var idempotencyKeyRetention: Duration = .seconds(24 * 3600)
    /// The keys that open tenants' secrets; without them a step that uses `${secrets.…}` fails with
    /// `secret_unavailable`.
    public var masterKeys: MasterKeyring?
    /// How long a tenant's settings (egress rules) are reused before they are read again.
    public var tenantSettingsTTL: Duration = .seconds(2)

    public init(
        nodeID: String = EngineConfiguration.makeNodeID(),
        maxConcurrentSteps: Int = 64,
        claimBatchSize: Int = 128,
        commitBatchSize: Int = 256,
        leaseDuration: Duration = .seconds(30),
        heartbeatInterval: Duration = .seconds(10),
        pollInterval: Duration = .seconds(1),
        defaultStepTimeout: Duration = .seconds(300)
    ) {
        self.nodeID = nodeID
        self.maxConcurrentSteps = maxConcurrentSteps
        self.claimBatchSize = claimBatchSize
        self.commitBatchSize = commitBatchSize
        self.leaseDuration = leaseDuration
        self.heartbeatInterval = heartbeatInterval
        self.pollInterval = pollInterval
        self.defaultStepTimeout = defaultStepTimeout
    }

    /// `host-pid-random`: readable in history and unique across restarts.
    public static func makeNodeID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "node"
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
    }

    /// Fails with a clear message when a value cannot work.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw ConfigurationError(message: message) }
        }
        try require(maxConcurrentSteps >= 1, "maxConcurrentSteps must be at least 1")
        try require(claimBatchSize >= 1, "claimBatchSize must be at least 1")
        try require(commitBatchSize >= 1, "commitBatchSize must be at least 1")
        try require(heartbeatInterval * 2 <= leaseDuration, "the heartbeat interval must be at most half the lease duration")
        try require(pollInterval > .zero, "pollInterval must be positive")
    }
}

/// A configuration value that cannot work.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
