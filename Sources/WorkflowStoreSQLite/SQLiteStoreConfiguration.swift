/// Settings of the embedded SQLite store.
public struct SQLiteStoreConfiguration: Sendable {
    /// How SQLite waits for the disk at commit.
    public enum Synchronous: String, Sendable {
        /// Every commit is flushed to disk before it returns: a commit survives power loss. The default.
        case full = "FULL"
        /// Commits survive a process crash (`kill -9`) but the last ones may be lost on power loss or OS crash.
        case normal = "NORMAL"
    }

    /// Path of the database file; its directory is created if missing.
    public var path: String
    public var synchronous: Synchronous
    /// Read connections of the pool (writes always go through one writer).
    public var maximumReaderCount: Int
    /// How long a statement waits on a lock held by another connection before failing.
    public var busyTimeoutSeconds: Double
    /// Page cache of each connection, in KiB.
    public var pageCacheKiB: Int = 8192

    public init(path: String, synchronous: Synchronous = .full, maximumReaderCount: Int = 4, busyTimeoutSeconds: Double = 10) {
        self.path = path
        self.synchronous = synchronous
        self.maximumReaderCount = maximumReaderCount
        self.busyTimeoutSeconds = busyTimeoutSeconds
    }
}
