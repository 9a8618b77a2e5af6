import Foundation
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

/// Stored records as the API sends them.
enum Wire {
    static func workflow(_ d: DefinitionRecord) -> Workflow {
        Workflow(
            id: d.id,
            name: d.name,
            version: d.version,
            description: d.description,
            definition: d.spec,
            checksum: d.checksum,
            status: d.status,
            createdAt: WireCoding.time(d.createdAt),
            createdBy: d.createdBy,
            approvals: d.approvals.map { ApprovalInfo(actor: $0.actor, at: WireCoding.time($0.at), comment: $0.comment) }
        )
    }

    static func audit(_ e: AuditEntry) -> AuditEntryInfo {
        AuditEntryInfo(
            tenantId: e.record.tenantID,
            seq: e.seq,
            // The hashed time is whole milliseconds; the formatter truncates, so a hair more keeps 0.698 from
            // printing as 0.697 (and an export from failing offline verification).
            at: WireCoding.time(Date(timeIntervalSince1970: Double(AuditChain.milliseconds(e.record.at)) / 1000 + 0.00005)),
            actor: e.record.actor,
            action: e.record.action,
            target: e.record.target,
            outcome: e.record.outcome.rawValue,
            source: e.record.source,
            requestId: e.record.requestID,
            details: e.record.details,
            prevHash: e.previousHash,
            hash: e.hash
        )
    }

    static func secret(_ s: SecretRecord) -> SecretInfo {
        SecretInfo(name: s.name, createdAt: WireCoding.time(s.createdAt), updatedAt: WireCoding.time(s.updatedAt), updatedBy: s.updatedBy)
    }

    static func settings(_ s: TenantSettings) -> TenantSettingsInfo {
        TenantSettingsInfo(
            activationApprovals: s.activationApprovals,
            egressAllow: s.egressAllow,
            egressDeny: s.egressDeny,
            encryptPayloads: s.encryptPayloads
        )
    }

    static func accepted(_ run: RunRecord) -> RunAccepted {
        RunAccepted(
            runId: run.id,
            status: run.status,
            workflowId: run.definitionID,
            workflowName: run.workflowName,
            workflowVersion: run.workflowVersion,
            createdAt: WireCoding.time(run.createdAt)
        )
    }

    static func runSummary(_ r: RunRecord) -> RunSummary {
        RunSummary(
            runId: r.id,
            workflowId: r.definitionID,
            workflowName: r.workflowName,
            workflowVersion: r.workflowVersion,
            status: r.status,
            error: r.error,
            parentRunId: r.parentRunID,
            parentStepId: r.parentStepID,
            itemIndex: r.itemIndex,
            priority: r.priority,
            compensated: r.compensated,
            deadLetter: r.deadLetter ? true : nil,
            pendingSignals: r.pendingSignals.isEmpty
                ? nil : r.pendingSignals.map { PendingSignalInfo(name: $0.name, receivedAt: WireCoding.time($0.receivedAt)) },
            createdBy: r.createdBy,
            createdAt: WireCoding.time(r.createdAt),
            startedAt: WireCoding.time(r.startedAt),
            completedAt: WireCoding.time(r.completedAt)
        )
    }

    static func runDetail(_ r: RunRecord, steps: [StepRunRecord]) -> RunDetail {
        RunDetail(summary: runSummary(r), input: r.input, output: r.output, updatedAt: WireCoding.time(r.updatedAt), steps: steps.map(step))
    }

    static func step(_ s: StepRunRecord) -> StepDetail {
        StepDetail(
            id: s.stepID,
            status: s.status,
            attempts: s.attempt,
            output: s.output,
            error: s.error,
            startedAt: WireCoding.time(s.startedAt),
            completedAt: WireCoding.time(s.completedAt),
            state: s.status == .waiting ? s.state?.publicJSON : nil
        )
    }

    static func event(_ e: RunEventRecord) -> RunEvent {
        RunEvent(seq: e.seq, type: e.type, stepId: e.stepID, at: WireCoding.time(e.at), data: e.data)
    }

    static func deadLetter(_ run: RunRecord) -> DeadLetter {
        DeadLetter(
            runId: run.id,
            workflowId: run.definitionID,
            workflowName: run.workflowName,
            workflowVersion: run.workflowVersion,
            failedStep: run.error?["step_id"]?.stringValue,
            error: run.error,
            failedAt: WireCoding.time(run.completedAt),
            compensated: run.compensated
        )
    }

    static func apiKey(_ k: APIKeyRecord) -> APIKeyInfo {
        APIKeyInfo(
            id: k.id,
            tenantId: k.tenantID,
            name: k.name,
            prefix: k.prefix,
            roles: k.roles,
            createdAt: WireCoding.time(k.createdAt),
            createdBy: k.createdBy,
            expiresAt: WireCoding.time(k.expiresAt),
            revokedAt: WireCoding.time(k.revokedAt),
            lastUsedAt: WireCoding.time(k.lastUsedAt),
            rateLimitPerMinute: k.rateLimitPerMinute,
            workflows: k.workflows
        )
    }

    static func tenant(_ t: TenantRecord) -> TenantInfo {
        TenantInfo(id: t.id, name: t.name, createdAt: WireCoding.time(t.createdAt), createdBy: t.createdBy)
    }
}

extension Wire {
    static func schedule(_ s: ScheduleRecord) -> ScheduleInfo {
        let spec = try? ScheduleSpec.parse(s.spec)
        let timing = spec?.timing(anchor: 0)
        let status = s.paused ? "paused" : (s.nextWakeAt == nil ? "completed" : "active")
        return ScheduleInfo(
            id: s.id,
            workflow: s.spec["workflow"]?.stringValue ?? "",
            status: status,
            note: s.note,
            spec: s.spec,
            nextFireAt: s.state.nextFireAt.map(ScheduleTime.format),
            nextFireLocal: s.state.nextFireAt.flatMap { t in timing.map { $0.localDescription(t) } },
            lastFireAt: s.state.lastFireAt.map(ScheduleTime.format),
            lastRunID: s.state.lastRunID,
            bufferedFireAt: s.state.bufferedFireAt.map(ScheduleTime.format),
            fired: s.state.fired,
            skippedMissed: s.state.skippedMissed,
            skippedOverlap: s.state.skippedOverlap,
            failed: s.state.failed,
            lastError: s.state.lastError,
            revision: s.revision,
            createdAt: WireCoding.time(s.createdAt),
            updatedAt: WireCoding.time(s.updatedAt),
            createdBy: s.createdBy
        )
    }

    static func fire(_ f: ScheduleFireRecord) -> ScheduleFireInfo {
        ScheduleFireInfo(scheduledAt: ScheduleTime.format(f.scheduledAt), runID: f.runID, firedAt: WireCoding.time(f.firedAt), created: true)
    }
}

extension Wire {
    static func webhook(_ s: WebhookSubscription) -> WebhookInfo {
        WebhookInfo(
            id: s.id,
            url: s.url,
            eventTypes: s.eventTypes,
            status: s.status.rawValue,
            disabledReason: s.disabledReason,
            description: s.description,
            previousSecretExpiresAt: s.previousSecret == nil ? nil : WireCoding.time(s.previousSecretExpiresAt),
            createdAt: WireCoding.time(s.createdAt),
            updatedAt: WireCoding.time(s.updatedAt),
            createdBy: s.createdBy
        )
    }

    static func delivery(_ d: WebhookDelivery, attempts: [WebhookAttempt]? = nil) -> WebhookDeliveryInfo {
        WebhookDeliveryInfo(
            id: d.id,
            webhookID: d.subscriptionID,
            eventID: d.eventID,
            eventType: d.eventType,
            status: d.status.rawValue,
            attempts: d.attempts,
            nextAttemptAt: WireCoding.time(d.nextAttemptAt),
            lastStatusCode: d.lastStatusCode,
            lastError: d.lastError,
            createdAt: WireCoding.time(d.createdAt),
            updatedAt: WireCoding.time(d.updatedAt),
            attemptLog: attempts?.map {
                WebhookAttemptInfo(
                    number: $0.number,
                    at: WireCoding.time($0.at),
                    statusCode: $0.statusCode,
                    latencyMs: $0.latencyMs,
                    error: $0.error,
                    responseExcerpt: $0.responseExcerpt
                )
            }
        )
    }

    static func outboxEvent(_ e: OutboxEvent) -> EventInfo {
        let json = e.json
        return EventInfo(
            eventID: e.id,
            eventType: e.type,
            timestamp: json["timestamp"]?.stringValue ?? "",
            correlationID: e.correlationID,
            payload: e.payload,
            metadata: json["metadata"] ?? .null
        )
    }
}
