import Foundation
import Synchronization
import WorkflowPrimitive

/// A store that encrypts the payloads of the tenants that ask for it (``PayloadSealer``) on their way to another
/// store, and decrypts them on their way back; everything else passes through. The engine and the API see plaintext;
/// the database never does.
public final class EncryptingStore: WorkflowStore {
    public let base: any WorkflowStore
    public let sealer: PayloadSealer

    public init(base: any WorkflowStore, sealer: PayloadSealer) {
        self.base = base
        self.sealer = sealer
    }

    /// The tenants' encryption settings, read again when stale (`PayloadSealer.refreshInterval`).
    private func fresh() async throws { try await sealer.refresh(from: base) }

    public var isExclusive: Bool { base.isExclusive }
    public var concurrentWriters: Int { base.concurrentWriters }
    public func ping() async throws { try await base.ping() }

    // MARK: definitions (no payloads)

    public func definitionInsert(_ params: DefinitionInsertParams) async throws -> DefinitionInsertResult { try await base.definitionInsert(params) }
    public func definitionGet(tenantID: String, id: String) async throws -> DefinitionRecord? {
        try await base.definitionGet(tenantID: tenantID, id: id)
    }
    public func definitionVersions(tenantID: String, name: String) async throws -> [DefinitionRecord] {
        try await base.definitionVersions(tenantID: tenantID, name: name)
    }
    public func definitionList(_ params: DefinitionListParams) async throws -> [DefinitionRecord] { try await base.definitionList(params) }
    public func definitionUpdate(_ update: DefinitionUpdate) async throws -> DefinitionUpdateOutcome { try await base.definitionUpdate(update) }
    public func definitionDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> DefinitionDeleteOutcome {
        try await base.definitionDelete(tenantID: tenantID, id: id, audit: audit)
    }

    // MARK: runs

    public func runInsert(_ params: [RunInsertParams], now: Date) async throws -> [[TaskRecord]] {
        try await fresh()
        guard sealer.isActive else { return try await base.runInsert(params, now: now) }
        return try await base.runInsert(params.map(sealer.seal), now: now)
    }

    public func runGet(tenantID: String, id: String) async throws -> RunRecord? {
        try await fresh()
        guard sealer.isActive else { return try await base.runGet(tenantID: tenantID, id: id) }
        return try await base.runGet(tenantID: tenantID, id: id).map(sealer.open)
    }

    public func runList(_ params: RunListParams) async throws -> [RunRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.runList(params) }
        return try await base.runList(params).map(sealer.open)
    }

    public func stepList(runID: String) async throws -> [StepRunRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.stepList(runID: runID) }
        return try await base.stepList(runID: runID).map(sealer.open)
    }

    public func runChildren(parentRunID: String, stepID: String?, unfinishedOnly: Bool) async throws -> [RunRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.runChildren(parentRunID: parentRunID, stepID: stepID, unfinishedOnly: unfinishedOnly) }
        return try await base.runChildren(parentRunID: parentRunID, stepID: stepID, unfinishedOnly: unfinishedOnly).map(sealer.open)
    }

    public func runTreeCount(rootRunID: String) async throws -> Int { try await base.runTreeCount(rootRunID: rootRunID) }

    public func runTreeUnfinished(rootRunID: String, limit: Int) async throws -> [RunRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.runTreeUnfinished(rootRunID: rootRunID, limit: limit) }
        return try await base.runTreeUnfinished(rootRunID: rootRunID, limit: limit).map(sealer.open)
    }

    public func runFindByIdempotencyKey(tenantID: String, key: String) async throws -> RunRecord? {
        try await fresh()
        guard sealer.isActive else { return try await base.runFindByIdempotencyKey(tenantID: tenantID, key: key) }
        return try await base.runFindByIdempotencyKey(tenantID: tenantID, key: key).map(sealer.open)
    }

    public func idempotencyExpire(before: Date) async throws -> Int { try await base.idempotencyExpire(before: before) }
    public func runPurge(createdBefore: Date, tenantID: String?, limit: Int) async throws -> Int {
        try await base.runPurge(createdBefore: createdBefore, tenantID: tenantID, limit: limit)
    }
    public func idempotencyRelease(tenantID: String, key: String, before: Date) async throws -> Bool {
        try await base.idempotencyRelease(tenantID: tenantID, key: key, before: before)
    }

    public func deadLetterList(tenantID: String, before: String?, limit: Int) async throws -> [RunRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.deadLetterList(tenantID: tenantID, before: before, limit: limit) }
        return try await base.deadLetterList(tenantID: tenantID, before: before, limit: limit).map(sealer.open)
    }

    public func deadLetterDismiss(tenantID: String, runID: String, audit: [AuditRecord]) async throws -> Bool {
        try await base.deadLetterDismiss(tenantID: tenantID, runID: runID, audit: audit)
    }

    public func eventList(runID: String, afterSeq: Int, limit: Int) async throws -> [RunEventRecord] {
        try await fresh()
        guard sealer.isActive else { return try await base.eventList(runID: runID, afterSeq: afterSeq, limit: limit) }
        return try await base.eventList(runID: runID, afterSeq: afterSeq, limit: limit).map(sealer.open)
    }

    public func approvalsPending(
        tenantID: String,
        after: (runID: String, stepID: String)?,
        limit: Int
    ) async throws -> [(run: RunRecord, step: StepRunRecord)] {
        try await fresh()
        return try await base.approvalsPending(tenantID: tenantID, after: after, limit: limit).map { (sealer.open($0.run), sealer.open($0.step)) }
    }

    public func runTransitions(_ requests: [RunTransitionRequest], now: Date) async throws -> [RunTransitionOutcome] {
        try await fresh()
        guard sealer.isActive else { return try await base.runTransitions(requests, now: now) }
        // The decision sees plaintext and its writes are sealed; the caller gets the plaintext it decided.
        let decided = requests.map { _ in Decided() }
        let sealer = sealer
        let wrapped = zip(requests, decided).map { request, box in
            RunTransitionRequest(runID: request.runID, fence: request.fence, fenceRunID: request.fenceRunID) { snapshot in
                let plain = try request.decide(sealer.open(snapshot))
                box.value.withLock { $0 = plain }
                return sealer.seal(plain, tenantID: snapshot.run.tenantID)
            }
        }
        return try await base.runTransitions(wrapped, now: now).enumerated().map { index, outcome in
            guard case .applied(_, let tasks) = outcome, let plain = decided[index].value.withLock({ $0 }) else { return outcome }
            return .applied(plain, tasks: tasks)
        }
    }

    // MARK: queue

    public func taskClaim(_ params: TaskClaimParams) async throws -> TaskClaimResult {
        try await fresh()
        guard sealer.isActive else { return try await base.taskClaim(params) }
        let sealer = sealer
        var wrapped = params
        wrapped.onClaim = { snapshot, task in
            sealer.seal(params.onClaim(sealer.open(snapshot), task), tenantID: snapshot.run.tenantID)
        }
        var result = try await base.taskClaim(wrapped)
        result.claimed = result.claimed.map { ClaimedTask(task: $0.task, run: sealer.open($0.run), step: $0.step.map(sealer.open)) }
        return result
    }

    public func leaseRenew(_ params: LeaseRenewParams) async throws -> Set<Int64> { try await base.leaseRenew(params) }
    public func leaseRelease(owner: String, taskIDs: [Int64]) async throws { try await base.leaseRelease(owner: owner, taskIDs: taskIDs) }
    public func leaseExpireOthers(owner: String, now: Date) async throws -> Int { try await base.leaseExpireOthers(owner: owner, now: now) }
    public func taskCount(runID: String?) async throws -> Int { try await base.taskCount(runID: runID) }
    public func queueStats(now: Date, limit: Int) async throws -> QueueStats { try await base.queueStats(now: now, limit: limit) }

    // MARK: cluster, identity, audit, governance (no payloads)

    public var supportsNotify: Bool { base.supportsNotify }
    public func listenForWork(_ onWork: @escaping @Sendable () -> Void) async throws { try await base.listenForWork(onWork) }
    public func nodeHeartbeat(_ params: NodeHeartbeatParams) async throws { try await base.nodeHeartbeat(params) }
    public func nodeList() async throws -> [NodeRecord] { try await base.nodeList() }
    public func nodeDeleteStale(before: Date) async throws -> Int { try await base.nodeDeleteStale(before: before) }
    public func leaderAttemptElect(_ params: LeaderElectParams) async throws -> Bool { try await base.leaderAttemptElect(params) }
    public func leaderResign(name: String, owner: String) async throws { try await base.leaderResign(name: name, owner: owner) }
    public func leaderGet(name: String) async throws -> LeaderRecord? { try await base.leaderGet(name: name) }
    public func tenantInsert(_ tenant: TenantRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await base.tenantInsert(tenant, audit: audit, quotas: quotas)
    }
    public func tenantGet(id: String) async throws -> TenantRecord? { try await base.tenantGet(id: id) }
    public func tenantList(after: String?, limit: Int) async throws -> [TenantRecord] { try await base.tenantList(after: after, limit: limit) }
    public func apiKeyInsert(_ key: APIKeyRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await base.apiKeyInsert(key, audit: audit, quotas: quotas)
    }
    public func apiKeyFind(hash: String) async throws -> APIKeyRecord? { try await base.apiKeyFind(hash: hash) }
    public func apiKeyList(tenantID: String, after: String?, limit: Int) async throws -> [APIKeyRecord] {
        try await base.apiKeyList(tenantID: tenantID, after: after, limit: limit)
    }
    public func apiKeyRevoke(tenantID: String, id: String, at: Date, audit: [AuditRecord]) async throws -> Bool {
        try await base.apiKeyRevoke(tenantID: tenantID, id: id, at: at, audit: audit)
    }
    public func apiKeyTouch(ids: [String], at: Date) async throws { try await base.apiKeyTouch(ids: ids, at: at) }
    public func apiKeyCount() async throws -> Int { try await base.apiKeyCount() }
    public func auditAppend(_ records: [AuditRecord]) async throws { try await base.auditAppend(records) }
    public func auditList(_ params: AuditListParams) async throws -> [AuditEntry] { try await base.auditList(params) }
    public func auditHead(tenantID: String) async throws -> AuditHead? { try await base.auditHead(tenantID: tenantID) }
    public func auditTenants() async throws -> [String] { try await base.auditTenants() }

    public func tenantUpdateSettings(id: String, settings: TenantSettings, audit: [AuditRecord]) async throws -> TenantRecord? {
        let updated = try await base.tenantUpdateSettings(id: id, settings: settings, audit: audit)
        try await sealer.refresh(from: base, force: true)  // this node seals from the next write on
        return updated
    }

    public func secretPut(_ secret: SecretRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await base.secretPut(secret, audit: audit, quotas: quotas)
    }
    public func secretGet(tenantID: String, name: String) async throws -> SecretRecord? { try await base.secretGet(tenantID: tenantID, name: name) }
    public func secretList(tenantID: String, after: String?, limit: Int) async throws -> [SecretRecord] {
        try await base.secretList(tenantID: tenantID, after: after, limit: limit)
    }
    public func secretDelete(tenantID: String, name: String, audit: [AuditRecord]) async throws -> Bool {
        try await base.secretDelete(tenantID: tenantID, name: name, audit: audit)
    }
    public func secretsSealed(notUnder keyID: String, limit: Int) async throws -> [SecretRecord] {
        try await base.secretsSealed(notUnder: keyID, limit: limit)
    }
    public func secretRewrap(old: SecretRecord, keyID: String, ciphertext: String) async throws -> Bool {
        try await base.secretRewrap(old: old, keyID: keyID, ciphertext: ciphertext)
    }
}

// MARK: Schedules: the input a schedule starts its runs with is a payload like any other.
extension EncryptingStore {
    private func sealed(_ s: ScheduleRecord) -> ScheduleRecord {
        guard sealer.isActive, case .object(var spec) = s.spec, let input = spec["input"] else { return s }
        var s = s
        spec["input"] = sealer.seal(input as JSONValue, tenantID: s.tenantID) as JSONValue
        s.spec = .object(spec)
        return s
    }

    private func opened(_ s: ScheduleRecord) -> ScheduleRecord {
        guard sealer.isActive, case .object(var spec) = s.spec, let input = spec["input"] else { return s }
        var s = s
        spec["input"] = sealer.open(input)
        s.spec = .object(spec)
        return s
    }

    public func scheduleInsert(_ schedule: ScheduleRecord, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await fresh()
        return try await base.scheduleInsert(sealed(schedule), audit: audit, quotas: quotas)
    }
    public func scheduleGet(tenantID: String, id: String) async throws -> ScheduleRecord? {
        try await fresh()
        return try await base.scheduleGet(tenantID: tenantID, id: id).map(opened)
    }
    public func scheduleList(tenantID: String, after: String?, limit: Int) async throws -> [ScheduleRecord] {
        try await fresh()
        return try await base.scheduleList(tenantID: tenantID, after: after, limit: limit).map(opened)
    }
    public func scheduleUpdate(_ schedule: ScheduleRecord, expectedRevision: Int, audit: [AuditRecord]) async throws -> Bool {
        try await fresh()
        return try await base.scheduleUpdate(sealed(schedule), expectedRevision: expectedRevision, audit: audit)
    }
    public func scheduleDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await base.scheduleDelete(tenantID: tenantID, id: id, audit: audit)
    }
    public func schedulesDue(before: Date, limit: Int) async throws -> [ScheduleRecord] {
        try await fresh()
        return try await base.schedulesDue(before: before, limit: limit).map(opened)
    }
    public func scheduleCountActive() async throws -> Int { try await base.scheduleCountActive() }
    public func scheduleFire(_ params: ScheduleFireParams, now: Date) async throws -> ScheduleFireOutcome {
        try await fresh()
        guard sealer.isActive else { return try await base.scheduleFire(params, now: now) }
        var params = params
        params.schedule = sealed(params.schedule)
        params.starts = params.starts.map { ($0.scheduledAt, sealer.seal($0.run)) }
        return try await base.scheduleFire(params, now: now)
    }
    public func scheduleFires(tenantID: String, scheduleID: String, before: Int64?, limit: Int) async throws -> [ScheduleFireRecord] {
        try await base.scheduleFires(tenantID: tenantID, scheduleID: scheduleID, before: before, limit: limit)
    }
}

// MARK: Events carry no payloads (ids and statuses only), and subscription secrets are sealed by the API.
extension EncryptingStore {
    public func outboxPending(limit: Int) async throws -> [OutboxEvent] { try await base.outboxPending(limit: limit) }
    public func templateAdd(_ template: MessageTemplate, audit: [AuditRecord], quotas: StoreQuotas) async throws -> MessageTemplate {
        try await base.templateAdd(template, audit: audit, quotas: quotas)
    }
    public func templateGet(tenantID: String, name: String, version: Int?) async throws -> MessageTemplate? {
        try await base.templateGet(tenantID: tenantID, name: name, version: version)
    }
    public func templateList(tenantID: String, after: String?, limit: Int) async throws -> [MessageTemplate] {
        try await base.templateList(tenantID: tenantID, after: after, limit: limit)
    }
    public func outboxDispatch(_ events: [OutboxEvent], deliveries: [WebhookDelivery]) async throws {
        try await base.outboxDispatch(events, deliveries: deliveries)
    }
    public func eventsAfter(tenantID: String, afterSeq: Int64, limit: Int) async throws -> [OutboxEvent] {
        try await base.eventsAfter(tenantID: tenantID, afterSeq: afterSeq, limit: limit)
    }
    public func eventsHead(tenantID: String) async throws -> Int64 { try await base.eventsHead(tenantID: tenantID) }
    public func outboxPurge(before: Date) async throws -> Int { try await base.outboxPurge(before: before) }
    public func webhookInsert(_ subscription: WebhookSubscription, audit: [AuditRecord], quotas: StoreQuotas) async throws -> Bool {
        try await base.webhookInsert(subscription, audit: audit, quotas: quotas)
    }
    public func webhookGet(tenantID: String, id: String) async throws -> WebhookSubscription? {
        try await base.webhookGet(tenantID: tenantID, id: id)
    }
    public func webhookList(tenantID: String) async throws -> [WebhookSubscription] { try await base.webhookList(tenantID: tenantID) }
    public func webhooksActive() async throws -> [WebhookSubscription] { try await base.webhooksActive() }
    public func webhookUpdate(_ subscription: WebhookSubscription, audit: [AuditRecord]) async throws -> Bool {
        try await base.webhookUpdate(subscription, audit: audit)
    }
    public func webhookRewrap(old: WebhookSubscription, keyID: String, secret: String, previousSecret: String?) async throws -> Bool {
        try await base.webhookRewrap(old: old, keyID: keyID, secret: secret, previousSecret: previousSecret)
    }

    public func webhookDelete(tenantID: String, id: String, audit: [AuditRecord]) async throws -> Bool {
        try await base.webhookDelete(tenantID: tenantID, id: id, audit: audit)
    }
    public func deliveriesDue(before: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await base.deliveriesDue(before: before, limit: limit)
    }
    public func deliveryRecord(_ attempt: WebhookAttempt, delivery: WebhookDelivery, disable: (reason: String, at: Date)?) async throws {
        try await base.deliveryRecord(attempt, delivery: delivery, disable: disable)
    }
    public func deliveryList(_ filter: DeliveryFilter) async throws -> [WebhookDelivery] { try await base.deliveryList(filter) }
    public func deliveryGet(tenantID: String, id: String) async throws -> (WebhookDelivery, [WebhookAttempt])? {
        try await base.deliveryGet(tenantID: tenantID, id: id)
    }
    public func deliveryRedeliver(tenantID: String, ids: [String], at: Date, audit: [AuditRecord]) async throws -> Int {
        try await base.deliveryRedeliver(tenantID: tenantID, ids: ids, at: at, audit: audit)
    }
}

/// What a wrapped transition decided, in plaintext.
private final class Decided: Sendable {
    let value = Mutex<RunMutation?>(nil)
}
