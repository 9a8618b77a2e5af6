import Foundation
import Hummingbird
import WorkflowPrimitive
import WorkflowStore

extension WorkflowAPI {
    /// Retention by hand: `POST /api/v1/runs/purge {"older_than_days"}` (admins of the tenant; their tenant only).
    func addRetentionRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/runs/purge") { request, context in
            let principal = try context.authorize(.admin)
            _ = try queryParameters(request, allowed: [])
            var days = 0.0
            _ = try await commentedBody(request, allowEmpty: false, extra: ["older_than_days"]) { fields, issues in
                if let n = fields["older_than_days"]?.numberValue, n >= 0, n <= 36_500 {
                    days = n
                } else {
                    issues.append(
                        ValidationIssue(pointer: JSONPointer.root.appending("older_than_days"), message: "must be a number of days from 0 to 36500")
                    )
                }
            }
            let now = clock.now()
            let cutoff = now.addingTimeInterval(-days * 86_400)
            var purged = 0
            // In batches (each its own transaction), so a large purge never holds the database for long.
            for _ in 0..<200 {
                let n = try await store.runPurge(createdBefore: cutoff, tenantID: principal.tenantID, limit: 500)
                purged += n
                if n < 500 { break }
            }
            let audit = AuditRecord(
                tenantID: principal.tenantID,
                at: now,
                context: context.audit,
                action: "runs.purge",
                target: "tenant:\(principal.tenantID)",
                details: ["older_than_days": .number(days), "purged": .number(Double(purged))]
            )
            try await store.auditAppend([audit])
            return try respond(["purged": JSONValue.number(Double(purged))] as JSONValue)
        }
    }
}
