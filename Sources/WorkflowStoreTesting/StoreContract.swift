import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The behaviour every storage driver must show, written once and run against each driver
/// (as river's `riverdrivertest` and Temporal's shared SQL plugin tests do).
///
/// ```swift
/// @Test(arguments: StoreContract.cases)
/// func sqlite(_ c: StoreContract.Case) async throws { try await withSQLiteStore { try await c.run($0) } }
/// ```
/// Each case gets a fresh, empty store.
public enum StoreContract {
    /// One named behaviour.
    public struct Case: Sendable, CustomStringConvertible {
        public let name: String
        let body: @Sendable (any WorkflowStore) async throws -> Void

        public var description: String { name }

        public func run(_ store: any WorkflowStore) async throws { try await body(store) }
    }

    /// A failed expectation of the contract.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static let cases: [Case] = [
        Case(name: "definitions: insert, find, list, same content is existing, other content conflicts", body: definitions),
        Case(name: "runs: insert with first transition, read back, list with filters and cursor", body: runs),
        Case(name: "transitions: apply, number events, fence stale claims, reject without writing", body: transitions),
        Case(name: "claim: available only, priority then age, lease, expired leases taken over", body: claims),
        Case(name: "leases: renew per owner, release, expire others", body: leases),
        Case(name: "claim: writes of onClaim are applied, finished work is not returned", body: claimWrites),
        Case(name: "fencing: a worker whose lease was taken over cannot record its result", body: fencing),
        Case(name: "run trees: descendants counted and listed by their root, unfinished only, bounded", body: trees),
        Case(name: "definitions: retire and activate, delete only without runs, tenants isolated", body: definitionLifecycle),
        Case(name: "queue: steps a transition queues are interleaved with newcomers (fair_at)", body: fairQueue),
        Case(name: "children: by parent and step, unfinished only, in item order", body: children),
        Case(name: "idempotency keys: unique per tenant, found, expired by age", body: idempotencyKeys),
        Case(name: "dead letters: listed newest first per tenant, dismissed once", body: deadLetters),
        Case(name: "cluster: node heartbeats upsert and list held tasks, stale nodes removed, leader lease", body: cluster),
        Case(name: "release: a parked run's start task becomes claimable when a transition releases it", body: releaseParked),
        Case(name: "notify: listeners hear of committed work where the store can notify, and stop when cancelled", body: notify),
        Case(name: "tenants: the default one exists, others are created once, listed by id", body: tenants),
        Case(name: "API keys: stored by hash, listed per tenant, revoked once per tenant, last use moves forward", body: apiKeys),
        Case(name: "audit: chained per tenant in the writing transaction, listed with filters both ways, head kept", body: audit),
        Case(name: "audit: identity writes and run transitions append their entries only when they change something", body: auditWithChanges),
        Case(name: "governance: tenant settings replaced, secrets put, listed, re-wrapped only if unchanged, deleted", body: governance),
        Case(name: "schedules: per tenant, due across tenants, revisions, a fire time starts at most one run", body: schedules),
        Case(name: "retention: old finished trees purged with their rows; unfinished, dead-lettered and recent runs stay", body: retention),
        Case(name: "quotas: checked in the writing transaction, concurrent creates included; tenants, keys, secrets, templates paged", body: quotas),
        Case(name: "events: outbox with its transition, numbered per tenant, deliveries once, 410, redelivery, purge, templates", body: events),
    ]

    public static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func expect(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        if !condition { throw Failure(description: "StoreContract line \(line): \(message())") }
    }

    // MARK: fixtures (public so driver-specific tests can use them)

    public static func definition(_ name: String = "wf", version: String = "1.0.0", checksum: String = "c1", at: Date = t0) -> DefinitionRecord {
        DefinitionRecord(
            id: RecordID.make(now: at),
            tenantID: defaultTenantID,
            name: name,
            version: version,
            description: "d",
            spec: ["steps": [["id": "a", "type": "noop"]]],
            checksum: checksum,
            createdBy: nil,
            createdAt: at
        )
    }

    static func insertDefinition(_ store: any WorkflowStore, _ record: DefinitionRecord) async throws -> DefinitionRecord {
        guard case .inserted(let r) = try await store.definitionInsert(DefinitionInsertParams(record: record)) else {
            throw Failure(description: "definition \(record.name) \(record.version) was not inserted")
        }
        return r
    }

    /// A PENDING run with one QUEUED step `a` and its available task.
    static func insertRun(
        _ store: any WorkflowStore,
        definition: DefinitionRecord,
        at: Date,
        priority: Int = 0,
        steps: [String] = ["a"]
    ) async throws -> (RunRecord, [TaskRecord]) {
        let run = RunRecord(
            id: RecordID.make(now: at),
            tenantID: defaultTenantID,
            definitionID: definition.id,
            workflowName: definition.name,
            workflowVersion: definition.version,
            status: .pending,
            input: ["k": 1],
            priority: priority,
            createdAt: at,
            updatedAt: at
        )
        let initial = RunMutation(
            steps: steps.map { StepRunRecord(runID: run.id, stepID: $0, status: .queued, input: ["x": 1], updatedAt: at) },
            events: [NewEvent("run_created")] + steps.map { NewEvent("step_queued", stepID: $0) },
            newTasks: steps.map { NewTask(stepID: $0, kind: .step, availableAt: at, priority: priority) }
        )
        let tasks = try await store.runInsert([RunInsertParams(run: run, initial: initial)], now: at)
        return (run, tasks[0])
    }

    /// A claim that marks the step EXECUTING and records an event, as the engine does.
    static func claim(
        _ store: any WorkflowStore,
        owner: String,
        now: Date,
        limit: Int = 10,
        lease: TimeInterval = 30
    ) async throws
        -> TaskClaimResult
    {
        try await store.taskClaim(
            TaskClaimParams(
                owner: owner,
                limit: limit,
                leaseExpiresAt: now.addingTimeInterval(lease),
                now: now,
                onClaim: { snapshot, task in
                    guard let id = task.stepID, var step = snapshot.steps[id] else { return RunMutation() }
                    step.status = .executing
                    step.attempt += 1
                    step.updatedAt = now
                    var data: [String: JSONValue] = ["owner": .string(owner)]
                    if let previous = task.leaseOwner { data["taken_over_from"] = .string(previous) }
                    return RunMutation(steps: [step], events: [NewEvent("step_started", stepID: id, data: .object(data))])
                }
            )
        )
    }
}
