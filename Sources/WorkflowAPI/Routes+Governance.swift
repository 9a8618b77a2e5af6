import Foundation
import Hummingbird
import WorkflowEngine
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// The audit log (auditors), tenant policies (admins).
    func addGovernanceRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.get("/audit") { request, context in
            let principal = try context.authorize(.auditRead)
            let query = try queryParameters(
                request,
                allowed: ["tenant", "action", "actor", "target", "outcome", "since", "until", "limit", "cursor", "order", "after"]
            )
            let tenantID = try auditTenant(query, principal)
            let chainOrder = query.get("order") == "chain"
            if let order = query.get("order"), order != "chain", order != "newest" {
                throw WorkflowError(.invalidRequest, "order must be newest (the default) or chain")
            }
            func number(_ name: String) throws -> Int64? {
                guard let text = query.get(name) else { return nil }
                guard let n = Int64(text), n >= 0 else { throw WorkflowError(.invalidRequest, "\(name) must be a non-negative integer") }
                return n
            }
            func time(_ name: String) throws -> Date? {
                guard let text = query.get(name) else { return nil }
                guard let date = WireCoding.date(text) else { throw WorkflowError(.invalidRequest, "\(name) must be an RFC 3339 time") }
                return date
            }
            var outcome: AuditOutcome?
            if let text = query.get("outcome") {
                guard let parsed = AuditOutcome(rawValue: text) else {
                    throw WorkflowError(.invalidRequest, "outcome must be one of \(AuditOutcome.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                outcome = parsed
            }
            let limit = try pageSize(request)
            let after = try number("after")  // checked whatever the order: a bad value is an error, not ignored
            let params = AuditListParams(
                tenantID: tenantID,
                afterSeq: chainOrder ? (try after ?? number("cursor") ?? 0) : 0,
                limit: limit,
                action: query.get("action"),
                actor: query.get("actor"),
                target: query.get("target"),
                outcome: outcome,
                since: try time("since"),
                until: try time("until"),
                newestFirst: !chainOrder,
                beforeSeq: chainOrder ? nil : try number("cursor")
            )
            let entries = try await store.auditList(params)
            await auditWriter.append(
                [
                    AuditRecord(
                        tenantID: principal.tenantID,
                        at: clock.now(),
                        context: context.audit,
                        action: "audit.read",
                        target: "audit:\(tenantID)"
                    )
                ],
                logger: context.logger
            )
            let next = entries.count == limit ? entries.last.map { String($0.seq) } : nil
            return try respond(Page(items: entries.map(Wire.audit), nextCursor: next))
        }
        v1.get("/audit/verify") { request, context in
            let principal = try context.authorize(.auditRead)
            let query = try queryParameters(request, allowed: ["tenant", "checkpoint_seq", "checkpoint_hash"])
            let tenantID = try auditTenant(query, principal)
            var checkpoint: AuditHead?
            if let seqText = query.get("checkpoint_seq") {
                guard let seq = Int64(seqText), seq > 0, let hash = query.get("checkpoint_hash"), hash.utf8.count == 64 else {
                    throw WorkflowError(.invalidRequest, "a checkpoint is checkpoint_seq (a positive integer) and checkpoint_hash (64 hex digits)")
                }
                checkpoint = AuditHead(seq: seq, hash: hash.lowercased())
            }
            let result = try await AuditVerifier(store: store).verify(tenantID: tenantID, checkpoint: checkpoint)
            await auditWriter.append(
                [
                    AuditRecord(
                        tenantID: principal.tenantID,
                        at: clock.now(),
                        context: context.audit,
                        action: "audit.verify",
                        target: "audit:\(tenantID)",
                        details: ["valid": .bool(result.valid), "entries": .number(Double(result.entries))]
                    )
                ],
                logger: context.logger
            )
            return try respond(result)
        }
        v1.put("/secrets/:name") { request, context in
            let principal = try context.authorize(.admin)
            let name = try secretName(context)
            let keys = try masterKeys()
            let fields = try await jsonObject(request, allowEmpty: false)
            var issues: [ValidationIssue] = []
            for key in fields.keys.sorted() where key != "value" {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key.prefix(50))'"))
            }
            guard let value = fields["value"]?.stringValue, (1...65_536).contains(value.utf8.count) else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("value"), message: "must be a string of 1 to 65536 bytes"))
                throw WorkflowError(.invalidRequest, "the secret is invalid", issues: issues)
            }
            guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the secret is invalid", issues: issues) }
            let now = clock.now()
            let sealed = try keys.seal(Data(value.utf8), context: MasterKeyring.secretContext(tenantID: principal.tenantID, name: name))
            let record = SecretRecord(
                tenantID: principal.tenantID,
                name: name,
                keyID: sealed.keyID,
                ciphertext: sealed.box,
                createdAt: now,
                updatedAt: now,
                updatedBy: principal.subject
            )
            let audit = AuditRecord(tenantID: principal.tenantID, at: now, context: context.audit, action: "secret.set", target: "secret:\(name)")
            let created = try await store.secretPut(record, audit: [audit], quotas: configuration.quotas)
            let stored = try await store.secretGet(tenantID: principal.tenantID, name: name) ?? record
            return try respond(Wire.secret(stored), status: created ? .created : .ok, location: "/api/v1/secrets/\(name)")
        }
        v1.get("/secrets") { request, context in
            let principal = try context.authorize(.admin)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let limit = try pageSize(request)
            let items = try await store.secretList(tenantID: principal.tenantID, after: query.get("cursor"), limit: limit)
            return try respond(Page(items: items.map(Wire.secret), nextCursor: items.count == limit ? items.last?.name : nil))
        }
        v1.delete("/secrets/:name") { _, context in
            let principal = try context.authorize(.admin)
            let name = try secretName(context)
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: clock.now(),
                context: context.audit,
                action: "secret.delete",
                target: "secret:\(name)"
            )
            guard try await store.secretDelete(tenantID: principal.tenantID, name: name, audit: [audit]) else {
                throw WorkflowError(.secretNotFound, "no secret \(name)")
            }
            return Response(status: .noContent)
        }
        v1.post("/secrets/rotate-master-key") { request, context in
            let principal = try context.authorize(.admin)
            guard principal.isPlatformAdmin else { throw WorkflowError(.forbidden, "only an admin of the default tenant re-wraps secrets") }
            _ = try queryParameters(request, allowed: [])
            try await noInput(request)
            let keys = try masterKeys()
            var rewrapped = 0
            var skipped = 0
            // Pages until nothing is sealed under an older key; a box changed concurrently is left to the next pass.
            for _ in 0..<10_000 {
                let batch = try await store.secretsSealed(notUnder: keys.activeKeyID, limit: 200)
                if batch.isEmpty { break }
                var progressed = false
                for secret in batch {
                    let context = MasterKeyring.secretContext(tenantID: secret.tenantID, name: secret.name)
                    let plain = try keys.open(secret.ciphertext, keyID: secret.keyID, context: context)
                    let sealed = try keys.seal(plain, context: context)
                    if try await store.secretRewrap(old: secret, keyID: sealed.keyID, ciphertext: sealed.box) {
                        rewrapped += 1
                        progressed = true
                    } else {
                        skipped += 1
                    }
                }
                if !progressed && skipped > 1000 { break }
            }
            // Webhook signing secrets are sealed by the master key too (the current one, and the one a rotation keeps
            // honouring for a while). A previous secret no key of the ring opens any more is dropped, as signing does.
            for tenant in try await identities.tenantList() {
                for subscription in try await store.webhookList(tenantID: tenant.id) {
                    guard let keyID = subscription.keyID, keyID != keys.activeKeyID else { continue }
                    let context = EventRelay.secretContext(tenantID: subscription.tenantID, id: subscription.id)
                    let secret = try keys.seal(try keys.open(subscription.secret, keyID: keyID, context: context), context: context)
                    let previous = subscription.previousSecret.flatMap { box in
                        keys.keys.lazy.compactMap { try? keys.open(box, keyID: $0.id, context: context) }.first
                    }
                    let previousBox = try previous.map { try keys.seal($0, context: context).box }
                    if try await store.webhookRewrap(old: subscription, keyID: secret.keyID, secret: secret.box, previousSecret: previousBox) {
                        rewrapped += 1
                    }
                }
            }
            // The tenants' data keys (payload encryption) are wrapped by the master key too.
            if let sealer = (store as? EncryptingStore)?.sealer {
                for tenant in try await identities.tenantList() {
                    guard let wrapped = tenant.settings.dataKey, let rewrapped = try sealer.rewrap(wrapped, tenantID: tenant.id) else { continue }
                    var settings = tenant.settings
                    settings.dataKey = rewrapped
                    _ = try await store.tenantUpdateSettings(id: tenant.id, settings: settings, audit: [])
                }
            }
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: clock.now(),
                context: context.audit,
                action: "secret.rotate_master_key",
                target: "master_key:\(keys.activeKeyID)",
                details: ["rewrapped": .number(Double(rewrapped))]
            )
            try await store.auditAppend([audit])
            return try respond(["active_key_id": JSONValue.string(keys.activeKeyID), "rewrapped": .number(Double(rewrapped))] as JSONValue)
        }
        v1.get("/tenant/settings") { request, context in
            let principal = try context.authorize(.workflowRead)
            _ = try queryParameters(request, allowed: [])
            guard let tenant = try await identities.tenantGet(id: principal.tenantID) else { throw WorkflowError(.tenantNotFound, "no tenant") }
            return try respond(Wire.settings(tenant.settings))
        }
        v1.put("/tenant/settings") { request, context in
            let principal = try context.authorize(.admin)
            var settings = try TenantSettingsInfo.parse(try await jsonObject(request, allowEmpty: false))
            let now = clock.now()
            guard let before = try await identities.tenantGet(id: principal.tenantID) else { throw WorkflowError(.tenantNotFound, "no tenant") }
            // The data key outlives the setting: payloads sealed while it was on must stay readable.
            settings.dataKey = before.settings.dataKey
            if settings.encryptPayloads, settings.dataKey == nil {
                guard let sealer = (store as? EncryptingStore)?.sealer else {
                    throw WorkflowError(.masterKeyMissing, "encrypting payloads needs a master key (--master-key-file or UWF_MASTER_KEY)")
                }
                settings.dataKey = try sealer.newWrappedDataKey(tenantID: principal.tenantID)
            }
            func shown(_ s: TenantSettings) -> JSONValue {
                var s = s
                s.dataKey = nil
                return s.json
            }
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: now,
                context: context.audit,
                action: "tenant.settings",
                target: "tenant:\(principal.tenantID)",
                details: ["before": shown(before.settings), "after": shown(settings)]
            )
            guard let updated = try await store.tenantUpdateSettings(id: principal.tenantID, settings: settings, audit: [audit]) else {
                throw WorkflowError(.tenantNotFound, "no tenant")
            }
            return try respond(Wire.settings(updated.settings))
        }
    }

    func masterKeys() throws -> MasterKeyring {
        guard let keys = configuration.masterKeys else {
            throw WorkflowError(.masterKeyMissing, "this server has no master key (--master-key-file or UWF_MASTER_KEY), so it keeps no secrets")
        }
        return keys
    }

    func secretName(_ context: APIRequestContext) throws -> String {
        let name = try context.parameters.require("name")
        guard Template.isSecretName(name) else {
            throw WorkflowError(.invalidRequest, "a secret's name is a letter or '_' and up to 63 letters, digits or '_'")
        }
        return name
    }

    /// The tenant whose log is read: the caller's own; a platform auditor may name another.
    func auditTenant(_ query: Parameters, _ principal: Principal) throws -> String {
        guard let named = query.get("tenant"), named != principal.tenantID else { return principal.tenantID }
        guard principal.tenantID == Principal.platformTenant else {
            throw WorkflowError(.forbidden, "only auditors of the default tenant read other tenants' logs")
        }
        return named
    }
}

/// Walks a tenant's chain from its first entry, in pages, and checks every link, then the head the store keeps and
/// an optional checkpoint kept elsewhere (which is what catches a truncation that rewrote the head too).
struct AuditVerifier {
    let store: any AuditStore

    func verify(tenantID: String, checkpoint: AuditHead?) async throws -> AuditVerification {
        var previous: AuditHead?
        var checked: Int64 = 0
        var problem: AuditBreak?
        var checkpointSeen = false
        while problem == nil {
            let page = try await store.auditList(AuditListParams(tenantID: tenantID, afterSeq: previous?.seq ?? 0, limit: 1000))
            if page.isEmpty { break }
            // A page starts after the last entry read: a gap between pages shows as a missing entry.
            problem = AuditChain.firstBreak(in: page, after: previous)
            let good = problem.map { b in page.prefix { $0.seq < b.seq } } ?? page[...]
            checked += Int64(good.count)
            if let checkpoint, let entry = good.first(where: { $0.seq == checkpoint.seq }) {
                checkpointSeen = true
                if entry.hash != checkpoint.hash, problem == nil {
                    problem = AuditBreak(
                        seq: checkpoint.seq,
                        reason: .checkpointMismatch,
                        message: "entry \(checkpoint.seq) is not the one checkpointed"
                    )
                }
            }
            if let last = page.last { previous = AuditHead(seq: last.seq, hash: last.hash) }
            if page.count < 1000 { break }
        }
        let head = try await store.auditHead(tenantID: tenantID)
        if problem == nil, let head {
            if (previous?.seq ?? 0) < head.seq {
                problem = AuditBreak(
                    seq: (previous?.seq ?? 0) + 1,
                    reason: .truncated,
                    message: "the log ends at entry \(previous?.seq ?? 0) but its head is entry \(head.seq): the newest entries were removed"
                )
            } else if previous?.seq == head.seq, previous?.hash != head.hash {
                problem = AuditBreak(seq: head.seq, reason: .headMismatch, message: "entry \(head.seq) is not the one the head records")
            }
        }
        if problem == nil, let checkpoint, !checkpointSeen {
            problem = AuditBreak(
                seq: checkpoint.seq,
                reason: .truncated,
                message: "the checkpointed entry \(checkpoint.seq) is not in the log (it ends at \(previous?.seq ?? 0)): the log was truncated"
            )
        }
        return AuditVerification(
            tenantId: tenantID,
            valid: problem == nil,
            entries: checked,
            headSeq: previous?.seq ?? 0,
            headHash: previous?.hash ?? AuditChain.genesis,
            firstBreak: problem.map { .init(seq: $0.seq, reason: $0.reason.rawValue, message: $0.message) }
        )
    }
}

extension TenantSettingsInfo {
    /// Reads a body, reporting every problem with its pointer.
    static func parse(_ fields: [String: JSONValue]) throws(WorkflowError) -> TenantSettings {
        var issues: [ValidationIssue] = []
        func issue(_ key: String, _ message: String) { issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: message)) }
        let known: Set<String> = ["activation_approvals", "egress_allow", "egress_deny", "encrypt_payloads"]
        for key in fields.keys.sorted() where !known.contains(key) { issue(key, "unknown field '\(key.prefix(50))'") }
        var settings = TenantSettings()
        if let value = fields["activation_approvals"] {
            if let n = value.numberValue, n == n.rounded(), (0...10).contains(n) {
                settings.activationApprovals = Int(n)
            } else {
                issue("activation_approvals", "must be an integer from 0 (no approval needed) to 10")
            }
        }
        for key in ["egress_allow", "egress_deny"] {
            guard let value = fields[key] else { continue }
            guard let items = value.arrayValue, items.count <= 200, items.allSatisfy({ (1...253).contains($0.stringValue?.utf8.count ?? 0) }) else {
                issue(key, "must be an array of up to 200 host names, *.suffix patterns or CIDRs")
                continue
            }
            let rules = items.compactMap(\.stringValue)
            for (index, rule) in rules.enumerated() where EgressRule(rule) == nil {
                issues.append(
                    ValidationIssue(
                        pointer: JSONPointer.root.appending(key).appending(String(index)),
                        message: "'\(rule.prefix(60))' is not a host, *.suffix or CIDR"
                    )
                )
            }
            if key == "egress_allow" { settings.egressAllow = rules } else { settings.egressDeny = rules }
        }
        if let value = fields["encrypt_payloads"] {
            if let flag = value.boolValue { settings.encryptPayloads = flag } else { issue("encrypt_payloads", "must be true or false") }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the settings are invalid", issues: issues) }
        return settings
    }
}
