import Foundation
import WorkflowPrimitive
import WorkflowStore

/// `approval` steps: four-eyes decisions inside a run. The step waits (durably, like `wait_for_signal`) until
/// `approvers_required` distinct people have approved, or one rejects, or its timeout fires.
extension RunStateMachine {
    /// Who decides, and what.
    public struct ApprovalDecision: Sendable {
        public var actor: String
        /// The decider's role names.
        public var roles: Set<String>
        public var approve: Bool
        public var comment: String?
        /// The author of the run's definition version (refused when the step sets `exclude_author`).
        public var definitionAuthor: String?

        public init(actor: String, roles: Set<String>, approve: Bool, comment: String?, definitionAuthor: String?) {
            self.actor = actor
            self.roles = roles
            self.approve = approve
            self.comment = comment
            self.definitionAuthor = definitionAuthor
        }
    }

    /// The roles that may decide when a step names none.
    public static let defaultApproverRoles = ["approver", "admin"]

    mutating func activateApproval(_ planned: WorkflowPlan.Step, input: JSONValue) {
        startRunIfPending()
        var deadline: Date?
        if let timeout = input["timeout_ms"]?.numberValue, timeout >= 1 {
            deadline = now.addingTimeInterval(timeout / 1000)
        }
        let progress = ApprovalProgress(
            required: input["approvers_required"]?.integer(in: 1...10) ?? 1,
            roles: input["allowed_roles"]?.arrayValue?.compactMap(\.stringValue) ?? Self.defaultApproverRoles,
            excludeAuthor: input["exclude_author"]?.boolValue ?? false,
            message: input["message"]?.stringValue.map { String($0.utf8.prefix(1000)) ?? "" },
            deadline: deadline
        )
        put(
            StepRunRecord(
                runID: run.id,
                stepID: planned.id,
                status: .waiting,
                attempt: 1,
                input: input,
                state: .awaitingApproval(progress),
                startedAt: now,
                updatedAt: now
            )
        )
        var data: [String: JSONValue] = [
            "approvers_required": .number(Double(progress.required)), "allowed_roles": .array(progress.roles.map(JSONValue.string)),
        ]
        if let deadline {
            newTasks.append(NewTask(stepID: planned.id, kind: .step, availableAt: deadline, priority: run.priority))
            data["deadline_ms"] = .number(Double(AuditChain.milliseconds(deadline)))
        }
        events.append(NewEvent("approval_requested", stepID: planned.id, data: .object(data)))
    }

    /// Records one decision. A rejection fails the step (`approval_rejected`, not retried), so `on_failure`,
    /// compensation or the run's failure handle it; enough approvals complete it with
    /// `{"decision": "approved", "approvals": [...]}`.
    /// - Throws: `approval_not_pending`, `self_approval` (the run's initiator, or the author when excluded),
    ///   `forbidden` (none of the allowed roles), `already_decided`.
    mutating func decideApproval(stepID: String, _ d: ApprovalDecision) throws(WorkflowError) {
        guard !run.status.isTerminal else {
            throw WorkflowError(.approvalNotPending, "run \(run.id) has already finished (\(run.status.rawValue))")
        }
        guard var step = steps[stepID], step.status == .waiting, var progress = step.state?.approval, let planned = plan.step(for: stepID)
        else {
            throw WorkflowError(.approvalNotPending, "step \(stepID) of run \(run.id) is not waiting for an approval")
        }
        if let initiator = run.createdBy, initiator == d.actor {
            throw WorkflowError(.selfApproval, "\(d.actor) started run \(run.id) and so cannot decide its approval; another person must")
        }
        if progress.excludeAuthor, let author = d.definitionAuthor, author == d.actor {
            throw WorkflowError(.selfApproval, "\(d.actor) wrote this workflow version and so cannot decide its approval")
        }
        guard d.roles.contains(where: progress.roles.contains) else {
            throw WorkflowError(.forbidden, "deciding this approval needs one of the roles \(progress.roles.joined(separator: ", "))")
        }
        if progress.approvals.contains(where: { $0.actor == d.actor }) {
            throw WorkflowError(.alreadyDecided, "\(d.actor) has already approved step \(stepID) of run \(run.id)")
        }
        var data: [String: JSONValue] = ["actor": .string(d.actor), "decision": .string(d.approve ? "approved" : "rejected")]
        data["comment"] = d.comment.map(JSONValue.string)
        events.append(NewEvent("approval_decided", stepID: stepID, data: .object(data)))
        deleteTasks = deleteTasks.adding(steps: [stepID])  // its timeout; re-queued below while more approvals are needed
        guard d.approve else {
            step.status = .executing
            steps[stepID] = step
            var details: [String: JSONValue] = [
                "rejected_by": .string(d.actor), "approvals": DefinitionApproval.encode(progress.approvals) ?? .array([]),
            ]
            details["comment"] = d.comment.map(JSONValue.string)
            fail(
                step,
                planned,
                StepFailure(code: "approval_rejected", message: "\(d.actor) rejected the approval", retriable: false, details: .object(details))
            )
            return
        }
        progress.approvals.append(DefinitionApproval(actor: d.actor, at: now, comment: d.comment))
        if progress.approvals.count >= progress.required {
            step.status = .executing
            steps[stepID] = step
            succeed(step, planned, output: Self.approvalOutput(progress, decision: "approved"))
            return
        }
        step.state = .awaitingApproval(progress)
        step.updatedAt = now
        put(step)
        if let deadline = progress.deadline {
            newTasks.append(NewTask(stepID: stepID, kind: .step, availableAt: deadline, priority: run.priority))
        }
    }

    static func approvalOutput(_ progress: ApprovalProgress, decision: String) -> JSONValue {
        [
            "decision": .string(decision),
            "approvals": DefinitionApproval.encode(progress.approvals) ?? .array([]),
            "approvers_required": .number(Double(progress.required)),
        ]
    }
}
