import Foundation
import Logging
import PostgresNIO
import WorkflowPrimitive
import WorkflowStore

/// The cluster: LISTEN/NOTIFY, node heartbeats, leader leases.
extension PostgresStore {
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws {
        let channel = channel
        do {
            try await client.withConnection { conn in
                try await conn.listen(on: channel) { notifications in
                    for try await _ in notifications { onWork() }
                }
            }
        } catch  where Self.isConnectionFailure(error) {
            throw WorkflowError(.unavailable, "the database cannot be reached: \(Self.describe(error))")
        }
    }

    public func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws {
        try await guarded { [self] in
            _ = try await client.query(
                """
                INSERT INTO nodes (id, host, started_at, heartbeat_at) VALUES (\(params.id), \(params.host), \(params.startedAt), \(params.now))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at
                """,
                logger: logger
            ).collect()
        }
    }

    public func nodeList() async throws -> [NodeRecord] {
        try await guarded { [self] in
            try await client.query(
                """
                SELECT n.id, n.host, n.started_at, n.heartbeat_at,
                       (SELECT COUNT(*) FROM tasks t WHERE t.lease_owner = n.id)::bigint AS held
                FROM nodes n ORDER BY n.heartbeat_at DESC
                """,
                logger: logger
            ).collect().map { row in
                let r = row.makeRandomAccess()
                return NodeRecord(
                    id: try r["id"].decode(String.self),
                    host: try r["host"].decode(String.self),
                    startedAt: try r["started_at"].decode(Date.self),
                    heartbeatAt: try r["heartbeat_at"].decode(Date.self),
                    heldTasks: Int(try r["held"].decode(Int64.self))
                )
            }
        }
    }

    public func nodeDeleteStale(before: Date) async throws -> Int {
        try await guarded { [self] in
            try await client.query("DELETE FROM nodes WHERE heartbeat_at < \(before) RETURNING id", logger: logger).collect().count
        }
    }

    public func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool {
        try await guarded { [self] in
            let rows = try await client.query(
                """
                INSERT INTO leaders (name, owner, expires_at) VALUES (\(params.name), \(params.owner), \(params.expiresAt))
                ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
                WHERE leaders.owner = EXCLUDED.owner OR leaders.expires_at < \(params.now)
                RETURNING owner
                """,
                logger: logger
            ).collect()
            return !rows.isEmpty
        }
    }

    public func leaderResign(name: String, owner: String) async throws {
        try await guarded { [self] in
            _ = try await client.query("DELETE FROM leaders WHERE name = \(name) AND owner = \(owner)", logger: logger).collect()
        }
    }

    public func leaderGet(name: String) async throws -> LeaderRecord? {
        try await guarded { [self] in
            try await client.query("SELECT name, owner, expires_at FROM leaders WHERE name = \(name)", logger: logger).collect().first.map { row in
                let (name, owner, expiresAt) = try row.decode((String, String, Date).self)
                return LeaderRecord(name: name, owner: owner, expiresAt: expiresAt)
            }
        }
    }
}
