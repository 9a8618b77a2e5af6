import Logging
import PostgresNIO
import WorkflowStore

extension PostgresStore {
    /// Throws `quota_exceeded` unless the rows `count` counts are fewer than `quota`. Called inside the transaction that
    /// would add one, after taking a transaction lock named by `scope` (a kind and a tenant) in this store's schema:
    /// concurrent creates in the same scope wait for each other, so they cannot both pass the bound. (Advisory locks
    /// are database-wide: without the schema, deployments sharing a database would queue on each other's.)
    func ensureRoom(
        _ conn: PostgresConnection,
        scope: String,
        count: PostgresQuery,
        quota: Int,
        _ what: String,
        flag: String,
        logger: Logger
    ) async throws {
        try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(configuration.schema + "/quota/" + scope)))", logger: logger).collect()
        let n = try await conn.query(count, logger: logger).collect().first?.decode(Int.self) ?? 0
        if n >= quota { throw StoreQuotas.exceeded(what, quota, flag: flag) }
    }
}
