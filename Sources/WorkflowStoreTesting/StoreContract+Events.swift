import Foundation
import WorkflowPrimitive
import WorkflowStore

extension StoreContract {
    static func event(_ type: String, tenant: String = defaultTenantID, at: Date) -> OutboxEvent {
        OutboxEvent(id: RecordID.make(now: at), tenantID: tenant, type: type, at: at, correlationID: "r1", payload: ["run_id": "r1"])
    }

    static func events(_ store: any WorkflowStore) async throws {
        // Written with a transition: in the outbox only if the transition was applied.
        let definition = try await insertDefinition(store, definition())
        let (run, _) = try await insertRun(store, definition: definition, at: t0)
        let old = event("run.started", at: t0.addingTimeInterval(-7200))
        let applied = RunTransitionRequest(runID: run.id) { _ in
            var m = RunMutation(events: [NewEvent("x")])
            m.outbox = [old, event("run.completed", at: t0)]
            return m
        }
        let refused = RunTransitionRequest(runID: run.id) { _ in
            var m = RunMutation(events: [NewEvent("y")])
            m.outbox = [event("run.failed", at: t0)]
            throw WorkflowError(.runFinished, "no")
        }
        _ = try await store.runTransitions([applied, refused], now: t0)
        let other = event("run.started", tenant: "acme", at: t0.addingTimeInterval(1))
        _ = try await store.runTransitions(
            [
                RunTransitionRequest(runID: run.id) { _ in
                    var m = RunMutation()
                    m.outbox = [other]
                    return m
                }
            ],
            now: t0
        )
        var pending = try await store.outboxPending(limit: 10)
        try expect(pending.map(\.type).sorted() == ["run.completed", "run.started", "run.started"], "only applied events: \(pending.map(\.type))")
        try expect(pending.allSatisfy { $0.seq == nil }, "not numbered yet")

        // Dispatch numbers them in the order given and creates each delivery once.
        let subscription = webhook("w1")
        try expect(try await store.webhookInsert(subscription, audit: []), "subscription")
        try expect(try await store.webhookInsert(subscription, audit: []) == false, "once")
        pending.sort { $0.id < $1.id }
        func delivery(_ e: OutboxEvent, id: String) -> WebhookDelivery {
            WebhookDelivery(
                id: id,
                tenantID: e.tenantID,
                subscriptionID: "w1",
                eventID: e.id,
                eventType: e.type,
                body: "{}",
                status: .pending,
                attempts: 0,
                nextAttemptAt: t0,
                lastStatusCode: nil,
                lastError: nil,
                createdAt: t0,
                updatedAt: t0
            )
        }
        let mine = pending.filter { $0.tenantID == defaultTenantID }
        try await store.outboxDispatch(pending, deliveries: mine.enumerated().map { delivery($1, id: "d\($0)") })
        try await store.outboxDispatch(pending, deliveries: [delivery(mine[0], id: "again")])
        try expect(try await store.outboxPending(limit: 10).isEmpty, "dispatched")
        let stream = try await store.eventsAfter(tenantID: defaultTenantID, afterSeq: 0, limit: 10)
        try expect(stream.map(\.id) == mine.map(\.id), "the tenant's stream, in dispatch order")
        let seqs = stream.compactMap(\.seq)
        try expect(seqs.count == 2 && seqs[0] < seqs[1], "numbered: \(seqs)")
        try expect(try await store.eventsAfter(tenantID: defaultTenantID, afterSeq: seqs[0], limit: 10).map(\.id) == [mine[1].id], "resumed")
        try expect(try await store.eventsHead(tenantID: defaultTenantID) == seqs[1], "head")
        try expect(try await store.eventsAfter(tenantID: "acme", afterSeq: 0, limit: 10).map(\.id) == [other.id], "per tenant")

        // Deliveries: due, attempted, redelivered.
        let due = try await store.deliveriesDue(before: t0, limit: 10)
        try expect(due.map(\.id).sorted() == ["d0", "d1"], "one delivery per event and subscription: \(due.map(\.id))")
        var d = due[0]
        d.attempts = 1
        d.status = .failed
        d.nextAttemptAt = nil
        d.lastStatusCode = 410
        try await store.deliveryRecord(
            WebhookAttempt(deliveryID: d.id, number: 1, at: t0, statusCode: 410, latencyMs: 3, error: nil, responseExcerpt: "gone"),
            delivery: d,
            disable: ("410", t0)
        )
        try expect(try await store.webhookGet(tenantID: defaultTenantID, id: "w1")?.status == .disabled, "disabled by 410")
        try expect(try await store.webhooksActive().isEmpty, "no active subscription left")
        try expect(try await store.deliveriesDue(before: t0, limit: 10).isEmpty, "its pending deliveries end with it")
        guard let (read, attempts) = try await store.deliveryGet(tenantID: defaultTenantID, id: d.id) else { throw Failure(description: "delivery") }
        try expect(read.lastStatusCode == 410 && attempts.map(\.responseExcerpt) == ["gone"], "the attempt log")
        try expect(try await store.deliveryGet(tenantID: "acme", id: d.id) == nil, "per tenant")
        let failed = try await store.deliveryList(DeliveryFilter(tenantID: defaultTenantID, status: .failed))
        try expect(failed.count == 2, "both failed")
        try expect(try await store.deliveryRedeliver(tenantID: defaultTenantID, ids: failed.map(\.id), at: t0, audit: []) == 2, "redelivered")
        try expect(try await store.deliveryRedeliver(tenantID: defaultTenantID, ids: failed.map(\.id), at: t0, audit: []) == 0, "already pending")

        // Purge: dispatched events older than the retention, but never the newest.
        try expect(try await store.outboxPurge(before: t0.addingTimeInterval(-3600)) == 1, "the old one")
        try expect(try await store.eventsAfter(tenantID: defaultTenantID, afterSeq: 0, limit: 10).count == 1, "the recent one stays")

        // Templates: versions numbered per tenant and name.
        func template(_ name: String, _ body: String, tenant: String = defaultTenantID) -> MessageTemplate {
            MessageTemplate(tenantID: tenant, name: name, version: 0, subject: nil, body: body, description: nil, createdAt: t0, createdBy: nil)
        }
        try expect(try await store.templateAdd(template("a", "one"), audit: []).version == 1, "v1")
        try expect(try await store.templateAdd(template("a", "two"), audit: []).version == 2, "v2")
        try expect(try await store.templateAdd(template("a", "x", tenant: "acme"), audit: []).version == 1, "per tenant")
        try expect(try await store.templateGet(tenantID: defaultTenantID, name: "a", version: nil)?.body == "two", "latest")
        try expect(try await store.templateGet(tenantID: defaultTenantID, name: "a", version: 1)?.body == "one", "a version")
        try expect(try await store.templateList(tenantID: defaultTenantID).map(\.version) == [2], "the latest of each")
    }
}

extension StoreContract {
    /// A subscription to every event, at an address nothing listens on.
    static func webhook(_ id: String, tenant: String = defaultTenantID) -> WebhookSubscription {
        WebhookSubscription(
            tenantID: tenant,
            id: id,
            url: "http://127.0.0.1:9/x",
            eventTypes: ["*"],
            secret: "s",
            keyID: nil,
            createdAt: t0,
            updatedAt: t0,
            createdBy: nil
        )
    }

    static func retention(_ store: any WorkflowStore) async throws {
        let d = try await insertDefinition(store, definition())
        func insert(_ p: RunInsertParams) async throws -> String {
            var p = p
            p.initial = RunMutation(
                steps: [StepRunRecord(runID: p.run.id, stepID: "a", status: .success, attempt: 1, updatedAt: t0)],
                events: [NewEvent("run_created")],
                newTasks: [NewTask(stepID: "a", kind: .step, availableAt: t0.addingTimeInterval(3600))]
            )
            _ = try await store.runInsert([p], now: t0)
            return p.run.id
        }
        let done = try await insert(plainRun(d, at: t0, status: .completed))
        var childParams = plainRun(d, at: t0.addingTimeInterval(1), status: .completed, parent: done, step: "a", item: 0)
        childParams.run.rootRunID = done
        let child = try await insert(childParams)
        let running = try await insert(plainRun(d, at: t0.addingTimeInterval(2), status: .running))
        let dead = try await insert(plainRun(d, at: t0.addingTimeInterval(3), status: .failed, deadLetter: true))
        let other = try await insert(plainRun(d, at: t0.addingTimeInterval(4), tenant: "acme", status: .cancelled))
        let busy = try await insert(plainRun(d, at: t0.addingTimeInterval(5), status: .completed))
        var busyChild = plainRun(d, at: t0.addingTimeInterval(6), status: .running, parent: busy, step: "a", item: 0)
        busyChild.run.rootRunID = busy
        _ = try await insert(busyChild)
        let recent = try await insert(plainRun(d, at: t0.addingTimeInterval(100), status: .completed))

        try expect(try await store.runPurge(createdBefore: t0.addingTimeInterval(50), tenantID: defaultTenantID, limit: 10) == 1, "one tree")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: done) == nil, "the finished run is gone")
        try expect(try await store.runGet(tenantID: defaultTenantID, id: child) == nil, "with its child")
        let leftSteps = try await store.stepList(runID: done)
        let leftEvents = try await store.eventList(runID: done, afterSeq: 0, limit: 10)
        try expect(leftSteps.isEmpty && leftEvents.isEmpty, "steps, history")
        try expect(try await store.taskCount(runID: child) == 0, "and tasks")
        for (id, why) in [(running, "unfinished"), (dead, "a dead letter"), (busy, "its tree is unfinished"), (recent, "too recent")] {
            try expect(try await store.runGet(tenantID: defaultTenantID, id: id) != nil, "a run that is \(why) stays")
        }
        try expect(try await store.runGet(tenantID: "acme", id: other) != nil, "another tenant's stays when one tenant is purged")
        try expect(try await store.runPurge(createdBefore: t0.addingTimeInterval(50), tenantID: nil, limit: 10) == 1, "all tenants")
        try expect(try await store.runGet(tenantID: "acme", id: other) == nil, "now gone")
        try expect(try await store.runPurge(createdBefore: t0.addingTimeInterval(50), tenantID: nil, limit: 10) == 0, "nothing left to purge")
    }
}
