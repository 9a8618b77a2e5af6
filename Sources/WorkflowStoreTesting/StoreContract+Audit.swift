import Foundation
import WorkflowPrimitive
import WorkflowStore

/// The contract for the audit log and governance records.
extension StoreContract {
    static func auditRecord(
        _ action: String,
        tenant: String = defaultTenantID,
        at: Date = t0,
        actor: String? = "key:a",
        outcome: AuditOutcome = .success
    )
        -> AuditRecord
    {
        AuditRecord(
            tenantID: tenant,
            at: at,
            context: AuditContext(actor: actor, source: "127.0.0.1", requestID: "req-\(action)"),
            action: action,
            target: "run:\(action)",
            outcome: outcome,
            details: ["n": 1.5, "text": "é ✓"]
        )
    }

    static func audit(_ store: any WorkflowStore) async throws {
        try expect(try await store.auditHead(tenantID: defaultTenantID) == nil, "an empty chain has no head")
        try await store.auditAppend([
            auditRecord("a.one", at: t0), auditRecord("b.two", tenant: "acme", at: t0.addingTimeInterval(0.0004)),
            auditRecord("a.two", at: t0.addingTimeInterval(1.2345), actor: nil, outcome: .denied),
        ])
        try await store.auditAppend([auditRecord("a.three", at: t0.addingTimeInterval(2))])
        try await store.auditAppend([])
        let chain = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100))
        try expect(chain.map(\.seq) == [1, 2, 3] && chain.map(\.record.action) == ["a.one", "a.two", "a.three"], "numbered per tenant: \(chain)")
        try expect(AuditChain.firstBreak(in: chain, after: nil) == nil, "the stored chain verifies: \(chain)")
        try expect(chain[0].previousHash == AuditChain.genesis && chain[1].previousHash == chain[0].hash, "each entry points at the one before")
        try expect(chain[1].record.actor == nil && chain[1].record.outcome == .denied, "nil actor and outcome kept")
        try expect(chain[1].record.at == Date(timeIntervalSince1970: 1_800_000_001.235), "times kept to the millisecond: \(chain[1].record.at)")
        try expect(chain[0].record.details == ["n": 1.5, "text": "é ✓"] && chain[0].record.source == "127.0.0.1", "details and source kept")
        try expect(chain[0].record.requestID == "req-a.one" && chain[0].record.target == "run:a.one", "request id and target kept")
        try expect(try await store.auditHead(tenantID: defaultTenantID) == AuditHead(seq: 3, hash: chain[2].hash), "the head is the newest entry")
        let acme = try await store.auditList(AuditListParams(tenantID: "acme", limit: 100))
        try expect(acme.map(\.seq) == [1] && AuditChain.firstBreak(in: acme, after: nil) == nil, "each tenant has its own chain")
        try expect(try await store.auditTenants() == ["acme", defaultTenantID], "tenants with a chain")

        let page = try await store.auditList(AuditListParams(tenantID: defaultTenantID, afterSeq: 1, limit: 1))
        try expect(page.map(\.seq) == [2], "pages in chain order after a sequence number")
        let newest = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 2, newestFirst: true))
        try expect(newest.map(\.seq) == [3, 2], "newest first")
        let older = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 2, newestFirst: true, beforeSeq: 2))
        try expect(older.map(\.seq) == [1], "newest first, before a sequence number")
        let denied = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10, outcome: .denied))
        try expect(denied.map(\.seq) == [2], "by outcome")
        try expect(
            try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10, action: "a.three")).map(\.seq) == [3],
            "by action"
        )
        try expect(try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10, actor: "key:a")).count == 2, "by actor")
        try expect(try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 10, target: "run:a.one")).count == 1, "by target")
        let window = try await store.auditList(
            AuditListParams(tenantID: defaultTenantID, limit: 10, since: t0.addingTimeInterval(1), until: t0.addingTimeInterval(2))
        )
        try expect(window.map(\.seq) == [2], "by time, since inclusive, until exclusive")
        let hostile = try await store.auditList(
            AuditListParams(tenantID: defaultTenantID, limit: 10, since: .distantPast, until: Date(timeIntervalSince1970: 1e300))
        )
        try expect(hostile.count == 3, "extreme times are clamped, not trapped on")

        // A verifier starting mid-chain continues from the head it was given.
        try expect(AuditChain.firstBreak(in: Array(chain[1...]), after: AuditHead(seq: 1, hash: chain[0].hash)) == nil, "verifies from a checkpoint")
        var changed = chain
        changed[1].record.action = "a.other"
        try expect(AuditChain.firstBreak(in: changed, after: nil)?.reason == .hashMismatch, "a changed entry breaks its hash")
        try expect(AuditChain.firstBreak(in: [chain[0], chain[2]], after: nil)?.reason == .missing, "a removed entry is missing")
    }

    static func auditWithChanges(_ store: any WorkflowStore) async throws {
        let acme = TenantRecord(id: "acme", name: "Acme", createdAt: t0, createdBy: "key:root")
        try expect(try await store.tenantInsert(acme, audit: [auditRecord("tenant.create")]), "tenant inserted")
        try expect(try await store.tenantInsert(acme, audit: [auditRecord("tenant.create.again")]) == false, "not twice")
        try expect(try await store.apiKeyInsert(key("k1"), audit: [auditRecord("api_key.create")]), "key inserted")
        try expect(try await store.apiKeyRevoke(tenantID: defaultTenantID, id: "k1", at: t0, audit: [auditRecord("api_key.revoke")]), "revoked")
        try expect(
            try await store.apiKeyRevoke(tenantID: defaultTenantID, id: "k1", at: t0, audit: [auditRecord("api_key.revoke.again")]) == false,
            "once"
        )

        let definition = try await insertDefinition(store, definition())
        var (run, _) = try await insertRun(store, definition: definition, at: t0)
        let started = try await store.runInsert(
            [
                RunInsertParams(
                    run: RunRecord(
                        id: RecordID.make(now: t0.addingTimeInterval(1)),
                        tenantID: defaultTenantID,
                        definitionID: definition.id,
                        workflowName: definition.name,
                        workflowVersion: definition.version,
                        status: .pending,
                        input: [:],
                        createdAt: t0,
                        updatedAt: t0
                    ),
                    initial: RunMutation(events: [NewEvent("run_created")], audit: [auditRecord("run.start")])
                )
            ],
            now: t0
        )
        try expect(started.count == 1, "started")
        let cancel = RunTransitionRequest(runID: run.id) { snapshot in
            var r = snapshot.run
            r.status = .cancelled
            return RunMutation(run: r, events: [NewEvent("run_cancelled")], audit: [auditRecord("run.cancel")])
        }
        let refused = RunTransitionRequest(runID: run.id) { _ in
            throw WorkflowError(.runNotCancellable, "no")
        }
        let outcomes = try await store.runTransitions([cancel, refused], now: t0)
        guard case .applied = outcomes.first, case .rejected = outcomes.last else { throw Failure(description: "\(outcomes)") }
        run.status = .cancelled
        let actions = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100)).map(\.record.action)
        try expect(
            actions == ["tenant.create", "api_key.create", "api_key.revoke", "run.start", "run.cancel"],
            "audited with their changes: \(actions)"
        )
        let entries = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100))
        try expect(AuditChain.firstBreak(in: entries, after: nil) == nil, "and chained")
    }

    static func governance(_ store: any WorkflowStore) async throws {
        let settings = TenantSettings(activationApprovals: 2, egressAllow: ["10.0.0.0/8"], egressDeny: ["*.evil.test"])
        let updated = try await store.tenantUpdateSettings(id: defaultTenantID, settings: settings, audit: [auditRecord("tenant.settings")])
        try expect(updated?.settings == settings, "settings replaced: \(String(describing: updated))")
        try expect(try await store.tenantGet(id: defaultTenantID)?.settings == settings, "and read back")
        try expect(try await store.tenantUpdateSettings(id: "nope", settings: settings, audit: [auditRecord("nope")]) == nil, "unknown tenant")
        try expect(try await store.tenantGet(id: defaultTenantID).map { _ in true } == true, "still there")

        let s1 = SecretRecord(
            tenantID: defaultTenantID,
            name: "API_TOKEN",
            keyID: "k1",
            ciphertext: "box1",
            createdAt: t0,
            updatedAt: t0,
            updatedBy: "key:a"
        )
        try expect(try await store.secretPut(s1, audit: [auditRecord("secret.set")]), "created")
        var s2 = s1
        s2.ciphertext = "box2"
        s2.updatedAt = t0.addingTimeInterval(5)
        s2.createdAt = t0.addingTimeInterval(5)
        try expect(try await store.secretPut(s2, audit: []) == false, "replaced, not created")
        let read = try await store.secretGet(tenantID: defaultTenantID, name: "API_TOKEN")
        try expect(
            read?.ciphertext == "box2" && read?.createdAt == t0 && read?.updatedAt == t0.addingTimeInterval(5),
            "replaced, creation kept: \(String(describing: read))"
        )
        try expect(try await store.secretGet(tenantID: "acme", name: "API_TOKEN") == nil, "tenants are isolated")
        let other = SecretRecord(tenantID: "acme", name: "B", keyID: "k2", ciphertext: "boxb", createdAt: t0, updatedAt: t0, updatedBy: nil)
        _ = try await store.secretPut(other, audit: [])
        try expect(try await store.secretList(tenantID: defaultTenantID).map(\.name) == ["API_TOKEN"], "listed per tenant")
        try expect(try await store.secretsSealed(notUnder: "k2", limit: 10).map(\.name) == ["API_TOKEN"], "sealed under another key")
        try expect(try await store.secretRewrap(old: s1, keyID: "k2", ciphertext: "box3") == false, "a stale box is not re-wrapped")
        try expect(try await store.secretRewrap(old: read!, keyID: "k2", ciphertext: "box3"), "re-wrapped")
        try expect(try await store.secretsSealed(notUnder: "k2", limit: 10).isEmpty, "all under k2 now")
        try expect(try await store.secretDelete(tenantID: "acme", name: "API_TOKEN", audit: []) == false, "not another tenant's")
        try expect(try await store.secretDelete(tenantID: defaultTenantID, name: "API_TOKEN", audit: [auditRecord("secret.delete")]), "deleted")
        try expect(try await store.secretGet(tenantID: defaultTenantID, name: "API_TOKEN") == nil, "gone")
        let actions = try await store.auditList(AuditListParams(tenantID: defaultTenantID, limit: 100)).map(\.record.action)
        try expect(actions == ["tenant.settings", "secret.set", "secret.delete"], "audited: \(actions)")
    }
}
