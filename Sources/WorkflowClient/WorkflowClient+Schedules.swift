import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive

// Schedules.
extension WorkflowClient {
    // MARK: schedules

    /// Creates a schedule from its JSON form (`paused` and `note` may ride along).
    public func createSchedule(_ spec: JSONValue) async throws -> ScheduleInfo {
        let (_, response) = try await send(.POST, "/api/v1/schedules", body: Data(spec.canonicalString().utf8), contentType: "application/json")
        return try decode(ScheduleInfo.self, response)
    }

    public func replaceSchedule(_ id: String, _ spec: JSONValue) async throws -> ScheduleInfo {
        let (_, response) = try await send(
            .PUT,
            "/api/v1/schedules/\(escape(id))",
            body: Data(spec.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(ScheduleInfo.self, response)
    }

    public func schedules(limit: Int? = nil, cursor: String? = nil) async throws -> Page<ScheduleInfo> {
        try decode(Page<ScheduleInfo>.self, try await get("/api/v1/schedules", query: ["limit": limit.map(String.init), "cursor": cursor]))
    }

    public func schedule(_ id: String) async throws -> ScheduleInfo {
        try decode(ScheduleInfo.self, try await get("/api/v1/schedules/\(escape(id))"))
    }

    public func deleteSchedule(_ id: String) async throws {
        _ = try await send(.DELETE, "/api/v1/schedules/\(escape(id))", body: nil, contentType: nil)
    }

    /// `action` is `pause` or `resume`.
    public func setSchedulePaused(_ id: String, _ action: String, note: String?) async throws -> ScheduleInfo {
        let body: JSONValue = note.map { ["note": .string($0)] } ?? .object([:])
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/\(escape(id))/\(action)",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(ScheduleInfo.self, response)
    }

    public func triggerSchedule(_ id: String) async throws -> ScheduleTriggered {
        let (_, response) = try await send(.POST, "/api/v1/schedules/\(escape(id))/trigger", body: nil, contentType: nil)
        return try decode(ScheduleTriggered.self, response)
    }

    public func backfillSchedule(_ id: String, from: String, to: String) async throws -> Page<ScheduleFireInfo> {
        let body: JSONValue = ["from": .string(from), "to": .string(to)]
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/\(escape(id))/backfill",
            body: Data(body.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(Page<ScheduleFireInfo>.self, response)
    }

    public func previewSchedule(_ id: String, count: Int? = nil, after: String? = nil) async throws -> SchedulePreview {
        try decode(
            SchedulePreview.self,
            try await get("/api/v1/schedules/\(escape(id))/preview", query: ["count": count.map(String.init), "after": after])
        )
    }

    /// Fire times of a schedule not created yet.
    public func previewSchedule(spec: JSONValue, count: Int? = nil, after: String? = nil) async throws -> SchedulePreview {
        var query: [String] = []
        if let count { query.append("count=\(count)") }
        if let after { query.append("after=\(after.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? after)") }
        let (_, response) = try await send(
            .POST,
            "/api/v1/schedules/preview" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")),
            body: Data(spec.canonicalString().utf8),
            contentType: "application/json"
        )
        return try decode(SchedulePreview.self, response)
    }

    public func scheduleRuns(_ id: String, limit: Int? = nil, cursor: String? = nil) async throws -> Page<ScheduleFireInfo> {
        try decode(
            Page<ScheduleFireInfo>.self,
            try await get("/api/v1/schedules/\(escape(id))/runs", query: ["limit": limit.map(String.init), "cursor": cursor])
        )
    }
}
