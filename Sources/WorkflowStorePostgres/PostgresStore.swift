import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WorkflowPrimitive
import WorkflowStore

/// The clustered store: all state in one PostgreSQL database, shared by every `uwf serve` node.
///
/// Locking discipline, so that nodes cannot deadlock each other: every writer locks the run row first
/// (`FOR UPDATE`), then its tasks; a batch locks its runs in id order; claims lock tasks with
/// `FOR UPDATE SKIP LOCKED` and take the run with `SKIP LOCKED` too, so a claim never waits while holding locks.
/// Work that any node may take is announced with `pg_notify` on commit.
public final class PostgresStore: WorkflowStore, Service {
    public let client: PostgresClient
    public let configuration: PostgresStoreConfiguration
    let logger: Logger
    let channel: String
    let inputs = RunInputCache()
    let deadlines = OperationDeadlines()

    public var isExclusive: Bool { false }
    /// Batches lock their runs in id order and a run's task rows belong to it, so parallel committers cannot deadlock.
    public var concurrentWriters: Int { max(1, min(4, configuration.maximumConnections / 4)) }
    public var supportsNotify: Bool { true }

    public init(configuration: PostgresStoreConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.client = PostgresClient(configuration: configuration.client, backgroundLogger: logger)
        self.channel = "uwf_work_\(configuration.schema)"
    }

    /// Runs the connection pool (and the watchdog of operation deadlines) until the task is cancelled or, in a
    /// `ServiceGroup`, shut down gracefully. Nothing else works until it runs: put it first in the group, so that it
    /// stops last, after everything that uses it.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.deadlines.run() }
                await self.client.run()
                group.cancelAll()
            }
        }
    }

    /// Runs one store operation within `configuration.operationTimeout` and reports a database that cannot be reached
    /// (refused, closed or too slow) as `unavailable`, so that callers retry and the API answers 503, not 500.
    func guarded<T: Sendable>(
        timeout: Duration? = nil,
        _ operation: String = #function,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let timeout = timeout ?? configuration.operationTimeout
        do {
            return try await deadlines.run(
                within: timeout,
                timeoutError: {
                    WorkflowError(
                        .unavailable,
                        "the database did not answer \(operation) within \(timeout.formatted(.units(allowed: [.seconds, .milliseconds])))"
                    )
                },
                body
            )
        } catch let error as WorkflowError {
            throw error
        } catch let error as PostgresTransactionError where error.closureError is WorkflowError && error.rollbackError == nil {
            // A rule the transaction enforced (a quota, say): rolled back, and reported as itself.
            throw error.closureError!
        } catch {
            if Self.isConnectionFailure(error) {
                throw WorkflowError(.unavailable, "the database cannot be reached: \(Self.describe(error))")
            }
            throw error
        }
    }

    /// The deadline of a write of `runs` runs: the operation timeout, plus 5 ms per run beyond a thousand. A foreach of
    /// 10,000 items is one transaction whose rows are encoded inside the deadline: 2.4 s in a debug build on an idle
    /// machine, and more than the 1 ms per run allowed before on a CI machine running the suite in parallel. The
    /// deadline is there to notice a database that does not answer, not to fail a big but healthy write.
    func timeout(forRuns runs: Int) -> Duration {
        configuration.operationTimeout + .milliseconds(5 * max(0, runs - 1000))
    }

    /// Errors that say the database is unreachable or went away, not that a statement is wrong.
    static func isConnectionFailure(_ error: any Error) -> Bool {
        if let transaction = error as? PostgresTransactionError {
            return [transaction.beginError, transaction.closureError, transaction.commitError].contains {
                $0.map(isConnectionFailure) ?? false
            }
        }
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .listenFailed:
            return true
        case .server:
            // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return false
        }
    }

    /// A driver error as text for logs: PSQLError's own description hides everything, for fear of leaking data.
    static func describe(_ error: any Error) -> String {
        if let transaction = error as? PostgresTransactionError {
            return [transaction.beginError, transaction.closureError, transaction.commitError].compactMap { $0.map(describe) }
                .joined(separator: "; ")
        }
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            return "\(error.serverInfo?[.sqlState] ?? "") \(message)"
        }
        return "\(error.code)"
    }

    /// Creates the schema and applies missing migrations, under an advisory lock so nodes starting together
    /// apply each migration once.
    public func migrate() async throws {
        let schema = configuration.schema
        try await client.withTransaction(logger: logger) { conn in
            try await conn.query("SELECT pg_advisory_xact_lock(hashtext(\(schema)))", logger: logger)
            try await conn.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: schema)", logger: logger)
            try await conn.query(
                "CREATE TABLE IF NOT EXISTS uwf_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                logger: logger
            )
            var applied: Set<Int> = []
            for try await version in try await conn.query("SELECT version FROM uwf_migrations", logger: logger).decode(Int.self) {
                applied.insert(version)
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.version) {
                for statement in migration.sql { try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                try await conn.query(
                    "INSERT INTO uwf_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                )
                logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
    }

    /// Drops the schema and everything in it (tests only).
    public func dropSchema() async throws {
        try await client.query("DROP SCHEMA IF EXISTS \(unescaped: configuration.schema) CASCADE", logger: logger)
    }

    /// Answers within two seconds at most: readiness probes call it.
    public func ping() async throws {
        try await guarded(timeout: min(.seconds(2), configuration.operationTimeout)) { [self] in
            _ = try await client.query("SELECT 1", logger: logger).collect()
        }
    }
}
