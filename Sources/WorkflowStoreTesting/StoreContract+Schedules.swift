import Foundation
import WorkflowPrimitive
import WorkflowStore

extension StoreContract {
    static func schedule(_ id: String, tenant: String = defaultTenantID, wake: Date?, paused: Bool = false) -> ScheduleRecord {
        ScheduleRecord(
            tenantID: tenant,
            id: id,
            spec: ["id": .string(id), "workflow": "wf", "cron": "* * * * *"],
            state: ScheduleState(nextFireAt: wake.map { Int64($0.timeIntervalSince1970 * 1000) }),
            paused: paused,
            note: nil,
            nextWakeAt: wake,
            revision: 1,
            createdAt: t0,
            updatedAt: t0,
            createdBy: "key:root"
        )
    }

    static func schedules(_ store: any WorkflowStore) async throws {
        try expect(try await store.tenantInsert(TenantRecord(id: "acme", name: "Acme", createdAt: t0, createdBy: nil), audit: []), "tenant")
        try expect(try await store.scheduleInsert(schedule("b", wake: t0.addingTimeInterval(20)), audit: [auditRecord("schedule.create")]), "b")
        try expect(try await store.scheduleInsert(schedule("a", wake: t0.addingTimeInterval(10)), audit: []), "a")
        try expect(try await store.scheduleInsert(schedule("p", wake: t0, paused: true), audit: []), "paused")
        try expect(try await store.scheduleInsert(schedule("done", wake: nil), audit: []), "finished")
        try expect(try await store.scheduleInsert(schedule("a", tenant: "acme", wake: t0.addingTimeInterval(5)), audit: []), "same id elsewhere")
        try expect(try await store.scheduleInsert(schedule("a", wake: t0), audit: [auditRecord("schedule.create.again")]) == false, "not twice")

        let listed = try await store.scheduleList(tenantID: defaultTenantID, after: nil, limit: 10).map(\.id)
        try expect(listed == ["a", "b", "done", "p"], "listed by id: \(listed)")
        try expect(try await store.scheduleList(tenantID: defaultTenantID, after: "b", limit: 1).map(\.id) == ["done"], "paged")
        let due = try await store.schedulesDue(before: t0.addingTimeInterval(15), limit: 10)
        try expect(
            due.map(\.tenantID) == ["acme", defaultTenantID] && due.map(\.id) == ["a", "a"],
            "due across tenants, earliest first: \(due.map(\.id))"
        )
        try expect(try await store.scheduleCountActive() == 3, "active: unpaused with a wake time")

        var a = try await store.scheduleGet(tenantID: defaultTenantID, id: "a")!
        try expect(a.state.nextFireAt == Int64(t0.addingTimeInterval(10).timeIntervalSince1970 * 1000) && a.createdBy == "key:root", "read back")
        a.paused = true
        a.note = "maintenance"
        a.revision = 2
        try expect(try await store.scheduleUpdate(a, expectedRevision: 1, audit: [auditRecord("schedule.pause")]), "updated")
        try expect(try await store.scheduleUpdate(a, expectedRevision: 1, audit: [auditRecord("schedule.pause.stale")]) == false, "stale revision")
        try expect(try await store.scheduleGet(tenantID: defaultTenantID, id: "a")?.note == "maintenance", "note kept")

        // Fires: a fire time starts one run; the same time again reports the run that has it, and nothing else is written.
        let definition = try await insertDefinition(store, definition())
        func start(_ n: Int) -> RunInsertParams {
            RunInsertParams(
                run: RunRecord(
                    id: RecordID.make(now: t0.addingTimeInterval(Double(n))),
                    tenantID: defaultTenantID,
                    definitionID: definition.id,
                    workflowName: definition.name,
                    workflowVersion: definition.version,
                    status: .pending,
                    input: [:],
                    createdBy: "schedule:b",
                    createdAt: t0,
                    updatedAt: t0
                ),
                initial: RunMutation(events: [NewEvent("run_created")], newTasks: [NewTask(stepID: "a", kind: .step, availableAt: t0)])
            )
        }
        var b = try await store.scheduleGet(tenantID: defaultTenantID, id: "b")!
        b.state.fired = 2
        b.revision = 2
        let first = try await store.scheduleFire(
            ScheduleFireParams(
                schedule: b,
                expectedRevision: 1,
                starts: [(1000, start(1)), (2000, start(2))],
                audit: [auditRecord("schedule.fire")]
            ),
            now: t0
        )
        guard case .applied(let started, let existing) = first else { throw Failure(description: "first fire: \(first)") }
        try expect(started.count == 2 && existing.isEmpty && started.allSatisfy { $0.tasks.count == 1 }, "two runs started with their tasks")
        let again = try await store.scheduleFire(ScheduleFireParams(schedule: b, expectedRevision: 1, starts: [(3000, start(3))]), now: t0)
        guard case .conflict = again else { throw Failure(description: "a stale revision must conflict: \(again)") }
        b.revision = 3
        let twice = try await store.scheduleFire(
            ScheduleFireParams(schedule: b, expectedRevision: 2, starts: [(2000, start(4)), (3000, start(5))]),
            now: t0
        )
        guard case .applied(let started2, let existing2) = twice else { throw Failure(description: "second fire: \(twice)") }
        try expect(started2.map(\.scheduledAt) == [3000] && existing2.map(\.runID) == [started[1].runID], "a fire time already taken starts nothing")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: start(4).run.id) == nil, "and writes no run")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: started[0].runID)?.createdBy == "schedule:b", "the runs exist")
        let fires = try await store.scheduleFires(tenantID: defaultTenantID, scheduleID: "b", before: nil, limit: 10)
        try expect(fires.map(\.scheduledAt) == [3000, 2000, 1000], "fire log, latest first: \(fires.map(\.scheduledAt))")
        try expect(
            try await store.scheduleFires(tenantID: defaultTenantID, scheduleID: "b", before: 2000, limit: 10).map(\.scheduledAt) == [1000],
            "paged"
        )
        try expect(try await store.scheduleFires(tenantID: "acme", scheduleID: "b", before: nil, limit: 10).isEmpty, "per tenant")

        try expect(try await store.scheduleDelete(tenantID: defaultTenantID, id: "b", audit: [auditRecord("schedule.delete")]), "deleted")
        try expect(try await store.scheduleDelete(tenantID: defaultTenantID, id: "b", audit: [auditRecord("schedule.delete.again")]) == false, "once")
        try expect(try await store.scheduleFires(tenantID: defaultTenantID, scheduleID: "b", before: nil, limit: 10).isEmpty, "with its log")
        try expect(try await store.scheduleGet(tenantID: "acme", id: "a") != nil, "the other tenant's schedule stays")
        let actions = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100)).map(\.record.action)
        try expect(actions == ["schedule.create", "schedule.pause", "schedule.fire", "schedule.delete"], "audited with the changes: \(actions)")
    }
}
