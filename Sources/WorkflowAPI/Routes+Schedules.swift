import Foundation
import Hummingbird
import WorkflowEngine
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// Schedules: read with `workflow:read`; created, changed, fired and deleted with `workflow:execute` (a schedule
    /// starts runs, as its owner could).
    func addScheduleRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.post("/schedules") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            var fields = try await jsonObject(request, allowEmpty: false)
            let (paused, note) = try pauseFields(&fields)
            let record = try await scheduler.create(
                .object(fields),
                tenantID: principal.tenantID,
                paused: paused,
                note: note,
                createdBy: principal.subject,
                audit: context.audit,
                quotas: configuration.quotas
            )
            return try respond(Wire.schedule(record), status: .created, location: "/api/v1/schedules/\(record.id)")
        }
        v1.get("/schedules") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let limit = try pageSize(request)
            let items = try await store.scheduleList(tenantID: principal.tenantID, after: query.get("cursor"), limit: limit)
            return try respond(Page(items: items.map(Wire.schedule), nextCursor: items.count == limit ? items.last?.id : nil))
        }
        v1.post("/schedules/preview") { request, context in
            _ = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["count", "after"])
            var fields = try await jsonObject(request, allowEmpty: false)
            if fields["id"] == nil { fields["id"] = "preview" }
            let spec = try Scheduler.spec(.object(fields))
            return try respond(try preview(spec, anchor: clock.now(), query: query))
        }
        v1.get("/schedules/:id") { request, context in
            let principal = try context.authorize(.workflowRead)
            _ = try queryParameters(request, allowed: [])
            return try respond(Wire.schedule(try await schedule(context, principal.tenantID)))
        }
        v1.put("/schedules/:id") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            let id = try scheduleID(context)
            let fields = try await jsonObject(request, allowEmpty: false)
            let record = try await scheduler.replace(id: id, .object(fields), tenantID: principal.tenantID, audit: context.audit)
            return try respond(Wire.schedule(record))
        }
        v1.delete("/schedules/:id") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            try await scheduler.delete(id: try scheduleID(context), tenantID: principal.tenantID, audit: context.audit)
            return Response(status: .noContent)
        }
        v1.post("/schedules/:id/pause") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            let note = try await noteField(request)
            let record = try await scheduler.pause(id: try scheduleID(context), tenantID: principal.tenantID, note: note, audit: context.audit)
            return try respond(Wire.schedule(record))
        }
        v1.post("/schedules/:id/resume") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            let note = try await noteField(request)
            let record = try await scheduler.resume(id: try scheduleID(context), tenantID: principal.tenantID, note: note, audit: context.audit)
            return try respond(Wire.schedule(record))
        }
        v1.post("/schedules/:id/trigger") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            _ = try await commentedBody(request)
            let (record, runID) = try await scheduler.trigger(id: try scheduleID(context), tenantID: principal.tenantID, audit: context.audit)
            return try respond(ScheduleTriggered(runID: runID, schedule: Wire.schedule(record)), status: runID == nil ? .ok : .created)
        }
        v1.post("/schedules/:id/backfill") { request, context in
            let principal = try context.authorize(.workflowExecute)
            _ = try queryParameters(request, allowed: [])
            var from: Int64 = 0
            var to: Int64 = 0
            _ = try await commentedBody(request, allowEmpty: false, extra: ["from", "to"]) { fields, issues in
                for key in ["from", "to"] {
                    if let text = fields[key]?.stringValue, let ms = ScheduleTime.parse(text) {
                        if key == "from" { from = ms } else { to = ms }
                    } else {
                        issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "must be an RFC 3339 time with a zone"))
                    }
                }
            }
            let runs = try await scheduler.backfill(
                id: try scheduleID(context),
                tenantID: principal.tenantID,
                from: from,
                to: to,
                audit: context.audit
            )
            let items = runs.map {
                ScheduleFireInfo(scheduledAt: ScheduleTime.format($0.scheduledAt), runID: $0.runID, firedAt: nil, created: $0.created)
            }
            return try respond(Page(items: items, nextCursor: nil), status: runs.contains { $0.created } ? .created : .ok)
        }
        v1.get("/schedules/:id/preview") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["count", "after"])
            let record = try await schedule(context, principal.tenantID)
            return try respond(try preview(try Scheduler.spec(record.spec), anchor: record.createdAt, query: query))
        }
        v1.get("/schedules/:id/runs") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["limit", "cursor"])
            let record = try await schedule(context, principal.tenantID)
            var before: Int64?
            if let cursor = query.get("cursor") {
                guard let ms = Int64(cursor) else { throw WorkflowError(.invalidRequest, "cursor must be a value from next_cursor") }
                before = ms
            }
            let limit = try pageSize(request)
            let fires = try await store.scheduleFires(tenantID: principal.tenantID, scheduleID: record.id, before: before, limit: limit)
            return try respond(Page(items: fires.map(Wire.fire), nextCursor: fires.count == limit ? fires.last.map { String($0.scheduledAt) } : nil))
        }
    }

    func scheduleID(_ context: APIRequestContext) throws -> String {
        let id = try context.parameters.require("id")
        guard id.utf8.count <= 100 else { throw WorkflowError(.scheduleNotFound, "no schedule \(id.prefix(100))") }
        return id
    }

    func schedule(_ context: APIRequestContext, _ tenantID: String) async throws -> ScheduleRecord {
        let id = try scheduleID(context)
        guard let record = try await store.scheduleGet(tenantID: tenantID, id: id) else {
            throw WorkflowError(.scheduleNotFound, "no schedule \(id)")
        }
        return record
    }

    /// `paused` and `note` of a create request, taken out of the spec's fields.
    func pauseFields(_ fields: inout [String: JSONValue]) throws -> (Bool, String?) {
        var issues: [ValidationIssue] = []
        var paused = false
        var note: String?
        if let value = fields.removeValue(forKey: "paused") {
            if case .bool(let b) = value {
                paused = b
            } else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("paused"), message: "must be a boolean"))
            }
        }
        if let value = fields.removeValue(forKey: "note"), !value.isNull {
            if let text = value.stringValue, text.utf8.count <= 2000 {
                note = text
            } else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("note"), message: "must be a string of at most 2000 bytes"))
            }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the schedule is invalid", issues: issues) }
        return (paused, note)
    }

    /// The optional `{"note": "..."}` body of a pause or a resume.
    func noteField(_ request: Request) async throws -> String? {
        let fields = try await jsonObject(request, allowEmpty: true)
        var issues: [ValidationIssue] = []
        for key in fields.keys.sorted() where key != "note" {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key.prefix(50))'"))
        }
        var note: String?
        if let value = fields["note"], !value.isNull {
            if let text = value.stringValue, text.utf8.count <= 2000 {
                note = text
            } else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("note"), message: "must be a string of at most 2000 bytes"))
            }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return note
    }

    /// The next `count` (default 10, at most 100) fire times after `after` (default now).
    func preview(_ spec: ScheduleSpec, anchor: Date, query: Parameters) throws -> SchedulePreview {
        var count = 10
        if let text = query.get("count") {
            guard let n = Int(text), (1...100).contains(n) else { throw WorkflowError(.invalidRequest, "count must be an integer from 1 to 100") }
            count = n
        }
        var after = Int64(clock.now().timeIntervalSince1970 * 1000)
        if let text = query.get("after") {
            guard let ms = ScheduleTime.parse(text) else { throw WorkflowError(.invalidRequest, "after must be an RFC 3339 time with a zone") }
            after = ms
        }
        let timing = spec.timing(anchor: Int64(anchor.timeIntervalSince1970 * 1000))
        let times = timing.fires(after: after, until: .max, limit: count)
        return SchedulePreview(
            timeZone: spec.timeZone,
            fires: times.map { FireTimeInfo(at: ScheduleTime.format($0), local: timing.localDescription($0)) }
        )
    }
}
