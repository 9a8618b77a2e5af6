import Foundation

/// A `uwf serve` process that has joined the cluster.
public struct NodeRecord: Sendable, Hashable {
    public var id: String
    public var host: String
    public var startedAt: Date
    public var heartbeatAt: Date
    /// Tasks whose lease this node holds now.
    public var heldTasks: Int

    public init(id: String, host: String, startedAt: Date, heartbeatAt: Date, heldTasks: Int) {
        self.id = id
        self.host = host
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.heldTasks = heldTasks
    }
}

/// Records that a node is alive.
public struct NodeHeartbeatParams: Sendable {
    public var id: String
    public var host: String
    public var startedAt: Date
    public var now: Date

    public init(id: String, host: String, startedAt: Date, now: Date) {
        self.id = id
        self.host = host
        self.startedAt = startedAt
        self.now = now
    }
}

/// Takes or keeps a named leadership lease (river's `LeaderAttemptElect`).
public struct LeaderElectParams: Sendable {
    /// The singleton duty, e.g. `sweeper`.
    public var name: String
    public var owner: String
    public var expiresAt: Date
    public var now: Date

    public init(name: String, owner: String, expiresAt: Date, now: Date) {
        self.name = name
        self.owner = owner
        self.expiresAt = expiresAt
        self.now = now
    }
}

/// Who holds a leadership lease, and until when.
public struct LeaderRecord: Sendable, Hashable {
    public var name: String
    public var owner: String
    public var expiresAt: Date

    public init(name: String, owner: String, expiresAt: Date) {
        self.name = name
        self.owner = owner
        self.expiresAt = expiresAt
    }
}
