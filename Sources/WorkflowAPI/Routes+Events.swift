import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle
import Synchronization
import WorkflowPrimitive
import WorkflowStore
import WorkflowWire

extension WorkflowAPI {
    /// How long one live stream stays open before the server ends it (the client reconnects with `Last-Event-ID`):
    /// streams must not hold a node's shutdown, or its memory, for ever.
    static let maxStreamDuration: Duration = .seconds(300)
    static let streamPoll: Duration = .milliseconds(200)
    /// A comment on an idle stream, this often. It keeps proxies from closing the connection, and it is how a stream
    /// whose client went away is noticed (a write fails; until then the stream holds its place and polls): measured,
    /// a dropped client's place came back after two heartbeats.
    static let streamHeartbeat: Duration = .seconds(5)

    /// Live events as Server-Sent Events: a run's history (`/executions/{id}/events`), and the tenant's event stream
    /// (`/events`, also readable as JSON pages). Both resume after the `Last-Event-ID` a client last saw.
    func addEventRoutes(to v1: RouterGroup<APIRequestContext>) {
        v1.get("/executions/:run_id/events") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["after"])
            let runID = try context.parameters.require("run_id")
            try await checkRun(runID, visibleTo: principal)
            guard try await store.runGet(tenantID: principal.tenantID, id: runID) != nil else { throw WorkflowError(.runNotFound, "no run \(runID)") }
            let start = try resumePoint(request, query)
            let store = store
            let tenantID = principal.tenantID
            return try eventStream { writer in
                var after = Int(start)
                var finished = false
                try await Self.pump(writer: &writer) {
                    guard !finished else { return nil }
                    let events = try await store.eventList(runID: runID, afterSeq: after, limit: 500)
                    if let last = events.last { after = last.seq }
                    if events.isEmpty, let run = try await store.runGet(tenantID: tenantID, id: runID), run.status.isTerminal {
                        // Everything up to the end was sent: say so (a client must not reconnect), and end the stream.
                        finished = true
                        return [("", "end", #"{"status":"\#(run.status.rawValue)"}"#)]
                    }
                    return events.map { e in
                        (String(e.seq), e.type, (try? WireCoding.encode(Wire.event(e))).map { String(decoding: $0, as: UTF8.self) } ?? "{}")
                    }
                }
            }
        }
        v1.get("/events") { request, context in
            let principal = try context.authorize(.workflowRead)
            let query = try queryParameters(request, allowed: ["after", "limit", "types"])
            var types: Set<String>?
            if let text = query.get("types") {
                let list = Set(text.split(separator: ",").map(String.init))
                guard !list.isEmpty, list.isSubset(of: Set(OutboxEvent.types)) else {
                    throw WorkflowError(.invalidRequest, "types must be a comma-separated list of \(OutboxEvent.types.joined(separator: ", "))")
                }
                types = list
            }
            let store = store
            let tenantID = principal.tenantID
            let wanted = types
            guard Self.wantsStream(request) else {
                // JSON pages, for polling: after a stream number (0 for the oldest kept).
                let limit = try pageSize(request)
                let after =
                    try query.get("after").map { text -> Int64 in
                        guard let n = Int64(text), n >= 0 else { throw WorkflowError(.invalidRequest, "after must be a stream number") }
                        return n
                    } ?? 0
                let events = try await store.eventsAfter(tenantID: tenantID, afterSeq: after, limit: limit)
                let items = events.filter { types?.contains($0.type) ?? true }
                let next = events.count == limit ? events.last?.seq.map(String.init) : nil
                return try respond(EventPage(items: items.map(Wire.outboxEvent), nextCursor: next, head: events.last?.seq ?? after))
            }
            // A stream starts at the newest event unless the client says where it stopped.
            var after = try resumePoint(request, query, default: -1)
            if after < 0 { after = try await store.eventsHead(tenantID: tenantID) }
            let start = after
            return try eventStream { writer in
                var after = start
                try await Self.pump(writer: &writer) {
                    let events = try await store.eventsAfter(tenantID: tenantID, afterSeq: after, limit: 500)
                    if let last = events.last?.seq { after = last }
                    return events.filter { wanted?.contains($0.type) ?? true }.map { e in
                        (String(e.seq ?? 0), e.type, e.json.canonicalString())
                    }
                }
            }
        }
    }

    static func wantsStream(_ request: Request) -> Bool {
        (request.headers[.accept] ?? "").lowercased().contains("text/event-stream")
    }

    /// Where a stream resumes: `Last-Event-ID`, else `?after=`, else `default`.
    func resumePoint(_ request: Request, _ query: Parameters, default value: Int64 = 0) throws -> Int64 {
        if let header = request.headers[HTTPField.Name("Last-Event-ID")!] {
            guard let n = Int64(header.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                throw WorkflowError(.invalidRequest, "Last-Event-ID must be the id of an event this stream sent")
            }
            return n
        }
        if let text = query.get("after") {
            guard let n = Int64(text), n >= 0 else { throw WorkflowError(.invalidRequest, "after must be a non-negative event number") }
            return n
        }
        return value
    }

    /// A streaming response, counted against `maxStreams` from now until its body ends.
    func eventStream(_ body: @escaping @Sendable (inout any ResponseBodyWriter) async throws -> Void) throws -> Response {
        guard let slot = StreamGate.Slot(streams, limit: configuration.maxStreams) else {
            throw WorkflowError(.rateLimited, "this node serves at most \(configuration.maxStreams) live streams at once; try again shortly")
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                // The slot is given back when this body is done with, written or not (a client gone before the
                // body began must not keep it).
                defer { withExtendedLifetime(slot) {} }
                try await body(&writer)
                try await writer.finish(nil)
            }
        )
    }

    /// Writes what `next` returns as SSE frames (`id`, `event`, `data`), polling while it returns nothing and sending
    /// a comment now and then so proxies keep the connection; ends when `next` returns nil, the client goes, the
    /// task is cancelled (shutdown) or the stream's time is up.
    static func pump(
        writer: inout any ResponseBodyWriter,
        _ next: () async throws -> [(id: String, type: String, data: String)]?
    ) async throws {
        let deadline = ContinuousClock.now + maxStreamDuration
        var lastWrite = ContinuousClock.now
        try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
        // A node shutting down ends its streams at once (their clients reconnect to another node).
        while !Task.isCancelled, !Task.isShuttingDownGracefully, ContinuousClock.now < deadline {
            guard let frames = try await next() else { return }
            if frames.isEmpty {
                if ContinuousClock.now - lastWrite > streamHeartbeat {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWrite = ContinuousClock.now
                }
                try await Task.sleep(for: streamPoll)
                continue
            }
            var text = ""
            for frame in frames {
                if !frame.id.isEmpty { text += "id: \(frame.id)\n" }
                text += "event: \(frame.type)\ndata: \(frame.data)\n\n"
            }
            try await writer.write(ByteBuffer(string: text))
            lastWrite = ContinuousClock.now
        }
    }
}

/// `GET /api/v1/events` as JSON: events after a stream number, and the number to ask after next.
struct EventPage: Encodable {
    var items: [EventInfo]
    var nextCursor: String?
    var head: Int64

    enum CodingKeys: String, CodingKey {
        case items = "events"
        case nextCursor = "next_cursor"
        case head
    }
}

/// How many live streams a node is serving.
final class StreamGate: Sendable {
    private let open = Mutex(0)

    func enter(limit: Int) -> Bool {
        open.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func leave() { open.withLock { $0 -= 1 } }
    var count: Int { open.withLock { $0 } }

    /// One stream's place, given back when the last reference to it goes (the response's body, once it is written or
    /// dropped unwritten).
    final class Slot: Sendable {
        private let gate: StreamGate

        init?(_ gate: StreamGate, limit: Int) {
            guard gate.enter(limit: limit) else { return nil }
            self.gate = gate
        }

        deinit { gate.leave() }
    }
}
