import WorkflowPrimitive

/// One node of the cluster.
public struct ClusterNode: Codable, Sendable, Hashable {
    public var id: String
    public var host: String
    public var startedAt: String
    public var lastHeartbeatAt: String
    public var heldTasks: Int
    public var alive: Bool
    public var leader: Bool

    public init(id: String, host: String, startedAt: String, lastHeartbeatAt: String, heldTasks: Int, alive: Bool, leader: Bool) {
        self.id = id
        self.host = host
        self.startedAt = startedAt
        self.lastHeartbeatAt = lastHeartbeatAt
        self.heldTasks = heldTasks
        self.alive = alive
        self.leader = leader
    }

    enum CodingKeys: String, CodingKey {
        case id, host, alive, leader
        case startedAt = "started_at"
        case lastHeartbeatAt = "last_heartbeat_at"
        case heldTasks = "held_tasks"
    }
}

/// The nodes of the cluster and its leader.
public struct ClusterStatus: Codable, Sendable, Hashable {
    public var nodes: [ClusterNode]
    @Nullable public var leader: String?

    public init(nodes: [ClusterNode], leader: String?) {
        self.nodes = nodes
        self.leader = leader
    }
}

/// The answer of the health probes.
public struct HealthStatus: Codable, Sendable, Hashable {
    public var status: String

    public init(status: String) { self.status = status }
}

/// An error, as RFC 9457 `application/problem+json` with the stable `code` clients branch on.
public struct Problem: Codable, Sendable, Hashable, Error {
    /// One problem with a part of the request, named by its JSON pointer.
    public struct FieldError: Codable, Sendable, Hashable {
        public var pointer: String
        public var message: String

        public init(pointer: String, message: String) {
            self.pointer = pointer
            self.message = message
        }
    }

    public var type: String
    public var title: String
    public var status: Int
    public var detail: String
    public var code: String
    public var errors: [FieldError]?

    public init(type: String, title: String, status: Int, detail: String, code: String, errors: [FieldError]?) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
        self.code = code
        self.errors = errors
    }

    /// The problem for `error`, answered with `status`.
    public init(_ error: WorkflowError, status: Int, title: String) {
        self.init(
            type: "urn:uwf:problem:\(error.code.rawValue)",
            title: title,
            status: status,
            detail: error.message,
            code: error.code.rawValue,
            errors: error.issues.isEmpty ? nil : error.issues.map { FieldError(pointer: $0.pointer, message: $0.message) }
        )
    }

    /// The error the problem reports.
    public var workflowError: WorkflowError {
        WorkflowError(
            WorkflowError.Code(rawValue: code),
            detail,
            issues: (errors ?? []).map { ValidationIssue(pointerText: $0.pointer, message: $0.message) }
        )
    }
}
