import GRDB
import WorkflowStore

extension SQLiteStore {
    /// Throws `quota_exceeded` unless the rows `countSQL` counts are fewer than `quota`. Called inside the write
    /// transaction that would add one: SQLite has one writer, so the count cannot change before the insert.
    static func ensureRoom(
        _ db: Database,
        _ countSQL: String,
        _ arguments: StatementArguments,
        quota: Int,
        _ what: String,
        flag: String
    ) throws {
        let count = try Int.fetchOne(db, sql: countSQL, arguments: arguments) ?? 0
        if count >= quota { throw StoreQuotas.exceeded(what, quota, flag: flag) }
    }
}
