import Foundation
import Logging
import WorkflowStorePostgres

/// The PostgreSQL server tests use, from `UWF_TEST_POSTGRES_URL` (scripts/test-postgres.sh starts one).
///
/// Without the variable the PostgreSQL tests are skipped, unless `UWF_REQUIRE_POSTGRES=1` (set by `.ci/run`),
/// in which case they run and fail: CI must never pass by skipping them.
public enum PostgresTestDatabase {
    public static var url: String? { ProcessInfo.processInfo.environment["UWF_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 } }
    public static var isRequired: Bool { ProcessInfo.processInfo.environment["UWF_REQUIRE_POSTGRES"] == "1" }
    /// Whether PostgreSQL tests should run (and fail when no server is configured).
    public static var enabled: Bool { url != nil || isRequired }

    /// A configuration for a new, uniquely named schema.
    public static func configuration(maximumConnections: Int = 4) throws -> PostgresStoreConfiguration {
        guard let url else {
            throw PostgresStoreTestError(description: "UWF_TEST_POSTGRES_URL is not set; start a server with scripts/test-postgres.sh")
        }
        var configuration = try PostgresStoreConfiguration(url: url)
        configuration.schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(20).lowercased()
        configuration.maximumConnections = maximumConnections
        return configuration
    }
}

public struct PostgresStoreTestError: Error, CustomStringConvertible {
    public var description: String
}

/// A migrated store on a schema of its own, dropped afterwards.
public func withPostgresStore<T: Sendable>(
    configuration: PostgresStoreConfiguration? = nil,
    _ body: (PostgresStore) async throws -> T
) async throws -> T {
    let configuration = try configuration ?? PostgresTestDatabase.configuration()
    var logger = Logger(label: "postgres-test")
    logger.logLevel = .warning
    let store = PostgresStore(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await store.run() }
        defer { group.cancelAll() }
        do {
            try await store.migrate()
            let result = try await body(store)
            try await store.dropSchema()
            return result
        } catch {
            try? await store.dropSchema()
            throw error
        }
    }
}
