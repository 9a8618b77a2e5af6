import Foundation
import Logging
import Testing
import WorkflowStore
import WorkflowStorePostgres
import WorkflowStoreTesting
import WorkflowTestSupport

/// Needs `UWF_TEST_POSTGRES_URL` (scripts/test-postgres.sh); `.ci/run` sets it and requires these to run.
@Suite(.enabled(if: PostgresTestDatabase.enabled))
struct PostgresStoreTests {
    @Test(arguments: StoreContract.cases)
    func contract(_ c: StoreContract.Case) async throws {
        try await withPostgresStore { try await c.run($0) }
    }

    @Test func migrationsRunOnceWhenNodesStartTogether() async throws {
        let configuration = try PostgresTestDatabase.configuration()
        try await withPostgresStore(configuration: configuration) { first in
            var logger = Logger(label: "second")
            logger.logLevel = .warning
            let others = (0..<3).map { _ in PostgresStore(configuration: configuration, logger: logger) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in others { group.addTask { await store.run() } }
                // Three nodes migrate at once: the advisory lock serialises them and each migration applies once.
                try await withThrowingTaskGroup(of: Void.self) { migrations in
                    for store in others { migrations.addTask { try await store.migrate() } }
                    try await migrations.waitForAll()
                }
                group.cancelAll()
            }
            let versions = try await first.client.query("SELECT version FROM uwf_migrations ORDER BY version").collect().map {
                try $0.decode(Int.self)
            }
            #expect(versions == Array(1...10))
        }
    }

    @Test func parsesDatabaseURLs() throws {
        let c = try PostgresStoreConfiguration(url: "postgres://app:s%40cret@db.internal:6543/uwf?sslmode=require&schema=prod&pool_size=40")
        #expect(c.host == "db.internal" && c.port == 6543 && c.username == "app" && c.password == "s@cret" && c.database == "uwf")
        #expect(c.tlsMode == "require" && c.schema == "prod" && c.maximumConnections == 40)
        #expect(!c.redacted.contains("s@cret"))
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "mysql://x") }
        // The deadlines: seconds, from 0.1 to 3600.
        let timed = try PostgresStoreConfiguration(url: "postgres://x/db?operation_timeout=2.5&connect_timeout=0.1")
        #expect(timed.operationTimeout == .milliseconds(2500) && timed.connectTimeout == .milliseconds(100))
        #expect(try PostgresStoreConfiguration(url: "postgres://x/db?operation_timeout=3600").operationTimeout == .seconds(3600))
        for bad in ["operation_timeout=0.09", "operation_timeout=3601", "connect_timeout=soon", "operation_timeout=nan"] {
            #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "postgres://x/db?\(bad)") }
        }
        #expect(throws: PostgresStoreError.self) { try PostgresStoreConfiguration(url: "postgres://x/db?schema=Bad-Name") }
    }

    @Test func notifiesOtherNodesOfNewWork() async throws {
        try await withPostgresStore { store in
            let (signals, continuation) = AsyncStream<Void>.makeStream()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await store.listenForWork { continuation.yield() } }
                // LISTEN takes effect asynchronously: keep inserting until a signal arrives.
                let definition = StoreContract.definition()
                _ = try await store.definitionInsert(DefinitionInsertParams(record: definition))
                let received = try await withThrowingTaskGroup(of: Bool.self) { waiter in
                    waiter.addTask {
                        for i in 0..<50 {
                            let run = RunRecord(
                                id: RecordID.make(now: Date()),
                                tenantID: defaultTenantID,
                                definitionID: definition.id,
                                workflowName: "wf",
                                workflowVersion: "1.0.0",
                                status: .pending,
                                input: [:],
                                createdAt: Date(),
                                updatedAt: Date()
                            )
                            _ = try await store.runInsert(
                                [
                                    RunInsertParams(
                                        run: run,
                                        initial: RunMutation(newTasks: [
                                            NewTask(stepID: "a", kind: .step, availableAt: Date())
                                        ])
                                    )
                                ],
                                now: Date()
                            )
                            try await Task.sleep(for: .milliseconds(20 * (i + 1)))
                        }
                        return false
                    }
                    waiter.addTask {
                        for await _ in signals { return true }
                        return false
                    }
                    let first = try await waiter.next() ?? false
                    waiter.cancelAll()
                    return first
                }
                #expect(received)
                group.cancelAll()
            }
        }
    }
}
