import Foundation
import Testing
import WorkflowStore
import WorkflowStoreSQLite
import WorkflowStoreTesting

/// A fresh SQLite file per test, removed afterwards.
func withSQLiteStore<T>(_ body: (SQLiteStore) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-store-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteStore(configuration: .init(path: directory.appendingPathComponent("uwf.sqlite").path))
    return try await body(store)
}

@Suite struct SQLiteStoreTests {
    @Test(arguments: StoreContract.cases)
    func contract(_ c: StoreContract.Case) async throws {
        try await withSQLiteStore { try await c.run($0) }
    }

    @Test func secondProcessOnTheSameFileIsRefused() async throws {
        _ = try await withSQLiteStore { store in
            #expect(throws: SQLiteStoreError.self) { try SQLiteStore(configuration: store.configuration) }
        }
    }

    @Test func committedDataSurvivesReopening() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = SQLiteStoreConfiguration(path: directory.appendingPathComponent("uwf.sqlite").path)
        var id = ""
        do {
            let store = try SQLiteStore(configuration: configuration)
            let record = StoreContract.definition()
            _ = try await store.definitionInsert(DefinitionInsertParams(record: record))
            id = record.id
            try store.close()
        }
        let reopened = try SQLiteStore(configuration: configuration)
        #expect(try await reopened.definitionGet(tenantID: defaultTenantID, id: id)?.name == "wf")
    }
}
