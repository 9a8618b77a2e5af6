import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import Testing
import WorkflowEngine
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowStoreSQLite
import WorkflowTestSupport

/// The storage drivers engine tests run on: SQLite always, PostgreSQL when a test server is configured.
enum TestDriver: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    static var all: [TestDriver] { PostgresTestDatabase.enabled ? [.sqlite, .postgres] : [.sqlite] }
    var description: String { rawValue }
}

/// A real engine on a real SQLite file in a fresh temporary directory.
struct EngineHarness {
    let store: any WorkflowStore
    let registry: WorkflowRegistry
    let engine: WorkflowEngine
    let directory: URL
    /// The engine's time: the wall clock, or a `ManualClock` the test advances.
    let clock: any WorkflowClock

    func register(_ json: String) async throws -> CompiledDefinition {
        switch try await registry.register(document: try JSONValue.parse(json), now: Date()) {
        case .created(let d), .existing(let d): return d
        }
    }

    /// Waits until the run reaches a terminal status (or `status`), polling the database; fails after `timeout`.
    @discardableResult
    func waitForRun(_ id: String, status: RunStatus? = nil, timeout: Duration = .seconds(20)) async throws -> RunRecord {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let run = try await store.runGet(tenantID: defaultTenantID, id: id),
                status.map({ run.status == $0 }) ?? run.status.isTerminal
            {
                return run
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        let run = try await store.runGet(tenantID: defaultTenantID, id: id)
        let history = try await events(id).map { "\($0.type)\($0.stepID.map { "(" + $0 + ")" } ?? "") \($0.data.canonicalString())" }
        let tasks = try await store.taskCount(runID: id)
        Issue.record(
            "run \(id) did not reach \(status?.rawValue ?? "a terminal status") in time; it is \(run?.status.rawValue ?? "missing"); \(tasks) tasks; history:\n\(history.joined(separator: "\n"))"
        )
        throw CancellationError()
    }

    func steps(_ runID: String) async throws -> [String: StepRunRecord] {
        Dictionary(uniqueKeysWithValues: try await store.stepList(runID: runID).map { ($0.stepID, $0) })
    }

    func events(_ runID: String) async throws -> [RunEventRecord] {
        try await store.eventList(runID: runID, afterSeq: 0, limit: 10_000)
    }
}

/// Runs `body` with an engine serving a fresh database, then shuts the engine down gracefully.
func withEngine<T: Sendable>(
    _ driver: TestDriver = .sqlite,
    limits: WorkflowLimits = .default,
    clock: any WorkflowClock = SystemClock(),
    configure: (inout EngineConfiguration) -> Void = { _ in },
    beforeStart: (EngineHarness) async throws -> Void = { _ in },
    _ body: (EngineHarness) async throws -> T
) async throws -> T {
    switch driver {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-engine-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(configuration: .init(path: directory.appendingPathComponent("uwf.sqlite").path))
        return try await withEngine(
            on: store,
            directory: directory,
            limits: limits,
            clock: clock,
            configure: configure,
            beforeStart: beforeStart,
            body
        )
    case .postgres:
        return try await withPostgresStore { store in
            try await withEngine(
                on: store,
                directory: URL(fileURLWithPath: "/"),
                limits: limits,
                clock: clock,
                configure: configure,
                beforeStart: beforeStart,
                body
            )
        }
    }
}

private func withEngine<T: Sendable>(
    on store: any WorkflowStore,
    directory: URL,
    limits: WorkflowLimits,
    clock: any WorkflowClock,
    configure: (inout EngineConfiguration) -> Void,
    beforeStart: (EngineHarness) async throws -> Void,
    _ body: (EngineHarness) async throws -> T
) async throws -> T {
    let registry = WorkflowRegistry(store: store, limits: limits)
    var configuration = EngineConfiguration(pollInterval: .milliseconds(200))
    configure(&configuration)
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    let http = HTTPRequestStepExecutor.makeClient()
    let engine = WorkflowEngine(
        configuration: configuration,
        store: store,
        registry: registry,
        executors: .builtin(http: HTTPRequestStepExecutor(client: http)),
        clock: clock,
        logger: logger
    )
    let group = ServiceGroup(configuration: .init(services: [engine], logger: logger))
    let harness = EngineHarness(store: store, registry: registry, engine: engine, directory: directory, clock: clock)
    do {
        try await beforeStart(harness)
        let result = try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { tasks.cancelAll() }
            let result = try await body(harness)
            await group.triggerGracefulShutdown()
            try await tasks.next()
            return result
        }
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}
