import Foundation
import GRDB
import Synchronization
import WorkflowPrimitive
import WorkflowStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded store: one SQLite file in WAL mode, owned by one process.
///
/// Opening takes an exclusive lock on `<path>.lock`, so a second `uwf serve` on the same data directory fails
/// at once instead of corrupting the queue; in exchange leases left by a crashed predecessor can be expired at start.
public final class SQLiteStore: WorkflowStore {
    let pool: DatabasePool
    let lockDescriptor: Int32
    private let lockHeld = Mutex(true)
    let inputs = RunInputCache()
    public let configuration: SQLiteStoreConfiguration

    public var isExclusive: Bool { true }
    public var concurrentWriters: Int { 1 }

    public init(configuration: SQLiteStoreConfiguration) throws {
        self.configuration = configuration
        let url = URL(fileURLWithPath: configuration.path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)

        let fd = open(configuration.path + ".lock", O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw SQLiteStoreError("cannot open lock file \(configuration.path).lock") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            closeDescriptor(fd)
            throw SQLiteStoreError("database \(configuration.path) is in use by another uwf process")
        }
        lockDescriptor = fd

        var config = Configuration()
        config.maximumReaderCount = configuration.maximumReaderCount
        config.busyMode = .timeout(configuration.busyTimeoutSeconds)
        let synchronous = configuration.synchronous.rawValue
        let cacheKiB = configuration.pageCacheKiB
        config.prepareDatabase { db in
            try db.run(sql: "PRAGMA synchronous = \(synchronous)")
            try db.run(sql: "PRAGMA cache_size = -\(cacheKiB)")  // negative: KiB rather than pages
            try db.run(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            try SQLiteSchema.migrator().migrate(pool)
        } catch {
            closeDescriptor(fd)
            throw error
        }
    }

    deinit {
        releaseLock()
    }

    /// Closes the database and releases the data directory's lock at once, rather than whenever the last
    /// reference goes (an async call may still hold one for a moment): a restore or a test that reopens the
    /// same file must not depend on when `deinit` runs. Calling it twice, or using the store after it, is safe
    /// but every later query fails.
    public func close() throws {
        try pool.close()
        releaseLock()
    }

    private func releaseLock() {
        lockHeld.withLock { held in
            guard held else { return }
            held = false
            try? pool.close()
            closeDescriptor(lockDescriptor)
        }
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }
}

/// `close(2)`, named apart from `SQLiteStore.close()`.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// A failure of the SQLite driver itself (not of a query), such as a database already in use.
public struct SQLiteStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Database {
    /// Runs a statement through GRDB's per-connection statement cache: the hot statements are compiled once.
    func run(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }

    func cached(_ sql: String) throws -> Statement {
        try cachedStatement(sql: sql)
    }
}
