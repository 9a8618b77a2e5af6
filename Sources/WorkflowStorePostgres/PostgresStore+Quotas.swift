import Logging
import PostgresNIO
import WorkflowStore

extension PostgresStore {
    /// Throws `quota_exceeded` unless the rows `count` counts are fewer than `quota`. Called inside the transaction that
    /// would add one, after taking a transaction lock named by `scope` (a kind and a tenant): concurrent creates in the
    /// same scope wait for each other, so they cannot both pass the bound.
    static func ensureRoom(
        _ conn: PostgresConnection,
        scope: String,
        count: PostgresQuery,
        quota: Int,
        _ what: String,
        flag: String,
        logger: Logger
    ) async throws {
        try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\("uwf-quota/" + scope)))", logger: logger).collect()
        let n = try await conn.query(count, logger: logger).collect().first?.decode(Int.self) ?? 0
        if n >= quota { throw StoreQuotas.exceeded(what, quota, flag: flag) }
    }
}
