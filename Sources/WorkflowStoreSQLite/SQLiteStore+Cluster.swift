import Foundation
import GRDB
import WorkflowPrimitive
import WorkflowStore

/// The cluster: one process owns the file, so nodes and leadership are trivial but kept for the same API.
extension SQLiteStore {
    public var supportsNotify: Bool { false }

    /// One process owns the file, so there is nobody to hear from: waits until cancelled.
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws {
        while !Task.isCancelled { try await Task.sleep(for: .seconds(3600)) }
    }

    public func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws {
        try await pool.write { db in
            try db.run(
                sql: """
                    INSERT INTO nodes (id, host, started_at, heartbeat_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
                    """,
                arguments: [params.id, params.host, SQLiteCoding.ms(params.startedAt), SQLiteCoding.ms(params.now)]
            )
        }
    }

    public func nodeList() async throws -> [NodeRecord] {
        try await pool.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT n.*, (SELECT COUNT(*) FROM tasks t WHERE t.lease_owner = n.id) AS held
                    FROM nodes n ORDER BY heartbeat_at DESC
                    """
            ).map { row in
                NodeRecord(
                    id: row["id"],
                    host: row["host"],
                    startedAt: SQLiteCoding.date(row["started_at"] as Int64),
                    heartbeatAt: SQLiteCoding.date(row["heartbeat_at"] as Int64),
                    heldTasks: row["held"]
                )
            }
        }
    }

    public func nodeDeleteStale(before: Date) async throws -> Int {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM nodes WHERE heartbeat_at < ?", arguments: [SQLiteCoding.ms(before)])
            return db.changesCount
        }
    }

    public func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool {
        try await pool.write { db in
            try db.run(
                sql: """
                    INSERT INTO leaders (name, owner, expires_at) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                    WHERE leaders.owner = excluded.owner OR leaders.expires_at < ?
                    """,
                arguments: [params.name, params.owner, SQLiteCoding.ms(params.expiresAt), SQLiteCoding.ms(params.now)]
            )
            return db.changesCount > 0
        }
    }

    public func leaderResign(name: String, owner: String) async throws {
        try await pool.write { db in
            try db.run(sql: "DELETE FROM leaders WHERE name = ? AND owner = ?", arguments: [name, owner])
        }
    }

    public func leaderGet(name: String) async throws -> LeaderRecord? {
        try await pool.read { db in
            try Row.fetchOne(try db.cached("SELECT * FROM leaders WHERE name = ?"), arguments: [name]).map {
                LeaderRecord(name: $0["name"], owner: $0["owner"], expiresAt: SQLiteCoding.date($0["expires_at"] as Int64))
            }
        }
    }
}
