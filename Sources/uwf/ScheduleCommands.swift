import ArgumentParser
import Foundation
import WorkflowClient
import WorkflowPrimitive
import WorkflowWire

/// `uwf schedule …`: schedules that start a workflow by cron, interval or at one instant.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Create, inspect, pause, trigger and backfill schedules.",
        subcommands: [
            Create.self, List.self, Get.self, Update.self, Delete.self, Pause.self, Resume.self, Trigger.self, Backfill.self, Preview.self, Runs.self,
        ]
    )

    /// The fields of a schedule given as flags (or a file).
    struct SpecOptions: ParsableArguments {
        @Option(help: "A JSON or YAML file with the whole schedule (flags given too override its fields).") var file: String?
        @Option(help: "The workflow each fire starts.") var workflow: String?
        @Option(help: "Its version (default: the latest active one at each fire).") var version: String?
        @Option(help: "The run input, a JSON object.") var input: String?
        @Option(help: "A cron expression: 5 fields (unix), or 6 with seconds first (--dialect seconds), or @hourly, @daily, …")
        var cron: String?
        @Option(help: "unix (5 fields, the default) or seconds (6 fields, seconds first).") var dialect: String?
        @Option(help: "IANA time zone of a cron schedule (default UTC).") var timeZone: String?
        @Option(help: "Fire every N seconds instead of by cron.") var intervalSeconds: Double?
        @Option(help: "Fire once, at this RFC 3339 time.") var at: String?
        @Option(help: "A local time that occurs twice: first (default), last or both.") var dstRepeated: String?
        @Option(help: "A local time that does not occur: shift (default) or skip.") var dstSkipped: String?
        @Option(help: "Fire times missed during downtime or a pause: skip, run_once (default) or run_all.") var missed: String?
        @Option(help: "While the previous run goes on: skip (default), buffer_one, allow_all or cancel_other.") var overlap: String?
        @Option(help: "Delay each fire by up to this many seconds (the same delay on every node).") var jitterSeconds: Int?
        @Option(help: "First possible fire time (RFC 3339).") var startAt: String?
        @Option(help: "Last possible fire time (RFC 3339).") var endAt: String?

        func spec(id: String?) throws -> [String: JSONValue] {
            var fields: [String: JSONValue] = [:]
            if let file {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                let yaml = file.hasSuffix(".yaml") || file.hasSuffix(".yml")
                guard case .object(let read) = try WorkflowDocument.decode(data, format: yaml ? .yaml : .json) else {
                    throw ValidationError("\(file) must hold an object")
                }
                fields = read
            }
            if let id { fields["id"] = .string(id) }
            let strings: [(String, String?)] = [
                ("workflow", workflow), ("version", version), ("cron", cron), ("dialect", dialect), ("time_zone", timeZone), ("at", at),
                ("dst_repeated", dstRepeated), ("dst_skipped", dstSkipped), ("missed", missed), ("overlap", overlap),
                ("start_at", startAt), ("end_at", endAt),
            ]
            for (key, value) in strings { if let value { fields[key] = .string(value) } }
            if let intervalSeconds { fields["interval_seconds"] = .number(intervalSeconds) }
            if let jitterSeconds { fields["jitter_seconds"] = .number(Double(jitterSeconds)) }
            if let input {
                guard let value = try? WorkflowDocument.decode(Data(input.utf8), format: .json) else {
                    throw ValidationError("--input must be a JSON object")
                }
                fields["input"] = value
            }
            return fields
        }
    }

    static func show(_ s: ScheduleInfo, json: Bool) {
        if json {
            print(String(decoding: (try? WireCoding.encode(s)) ?? Data(), as: UTF8.self))
            return
        }
        var lines = ["\(s.id): \(s.status), starts \(s.workflow)"]
        if let next = s.nextFireAt { lines.append("  next fire  \(next) (\(s.nextFireLocal ?? ""))") }
        if let last = s.lastFireAt { lines.append("  last fire  \(last), run \(s.lastRunID ?? "-")") }
        if let buffered = s.bufferedFireAt { lines.append("  buffered   \(buffered)") }
        lines.append("  fired \(s.fired), skipped (missed) \(s.skippedMissed), skipped (overlap) \(s.skippedOverlap), failed \(s.failed)")
        if let error = s.lastError { lines.append("  last error \(error)") }
        if let note = s.note { lines.append("  note       \(note)") }
        print(lines.joined(separator: "\n"))
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a schedule.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id (letters, digits, '.', '_', '-'); or give it in --file.") var id: String?
        @OptionGroup var spec: SpecOptions
        @Flag(help: "Create it paused.") var paused = false
        @Option(help: "A note (why it is paused).") var note: String?

        func run() async throws {
            var fields = try spec.spec(id: id)
            if paused { fields["paused"] = true }
            if let note { fields["note"] = .string(note) }
            let info = try await reportingErrors { try await try options.client.createSchedule(.object(fields)) }
            ScheduleCommand.show(info, json: options.json)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Replace a schedule's spec (firing goes on from now).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String
        @OptionGroup var spec: SpecOptions

        func run() async throws {
            let fields = try spec.spec(id: id)
            let info = try await reportingErrors { try await try options.client.replaceSchedule(id, .object(fields)) }
            ScheduleCommand.show(info, json: options.json)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.schedules(limit: limit, cursor: cursor) }
            if options.json {
                try printJSON(page)
                return
            }
            print(
                TableOutput.table(
                    ["ID", "WORKFLOW", "STATUS", "NEXT FIRE", "FIRED"],
                    page.items.map { [$0.id, $0.workflow, $0.status, $0.nextFireAt ?? "-", String($0.fired)] }
                )
            )
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a schedule.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String

        func run() async throws {
            ScheduleCommand.show(try await reportingErrors { try await try options.client.schedule(id) }, json: options.json)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule (its runs stay).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String

        func run() async throws {
            try await reportingErrors { try await try options.client.deleteSchedule(id) }
            print("deleted \(id)")
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pause a schedule, with a note saying why.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String
        @Option(help: "Why.") var note: String?

        func run() async throws {
            ScheduleCommand.show(
                try await reportingErrors { try await try options.client.setSchedulePaused(id, "pause", note: note) },
                json: options.json
            )
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume a schedule; its missed-run policy decides what missed fires run.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String
        @Option(help: "A note.") var note: String?

        func run() async throws {
            ScheduleCommand.show(
                try await reportingErrors { try await try options.client.setSchedulePaused(id, "resume", note: note) },
                json: options.json
            )
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Fire a schedule now (its overlap policy applies).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String

        func run() async throws {
            let answer = try await reportingErrors { try await try options.client.triggerSchedule(id) }
            if options.json {
                try printJSON(answer)
            } else if let run = answer.runID {
                print("started run \(run)")
            } else {
                print("no run started: the previous run is still going (overlap policy \(answer.schedule.spec["overlap"]?.stringValue ?? ""))")
            }
        }
    }

    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a run for every fire time in a range that has none yet.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String
        @Option(help: "From (RFC 3339, inclusive).") var from: String
        @Option(help: "To (RFC 3339, inclusive).") var to: String

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.backfillSchedule(id, from: from, to: to) }
            if options.json {
                try printJSON(page)
                return
            }
            print(
                TableOutput.table(
                    ["SCHEDULED AT", "RUN", "NEW"],
                    page.items.map { [$0.scheduledAt, $0.runID, $0.created ? "yes" : "no (existed)"] }
                )
            )
        }
    }

    struct Preview: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The next fire times of a schedule, or of a spec given by flags (before creating it)."
        )
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id (omit to preview the spec given by flags).") var id: String?
        @OptionGroup var spec: SpecOptions
        @Option(help: "How many (1-100).") var count: Int = 10
        @Option(help: "After this time (RFC 3339; default now).") var after: String?

        func run() async throws {
            let preview = try await reportingErrors {
                if let id, spec.cron == nil, spec.intervalSeconds == nil, spec.at == nil, spec.file == nil {
                    return try await try options.client.previewSchedule(id, count: count, after: after)
                }
                var fields = try spec.spec(id: id)
                if fields["workflow"] == nil { fields["workflow"] = "preview" }
                return try await try options.client.previewSchedule(spec: .object(fields), count: count, after: after)
            }
            if options.json {
                try printJSON(preview)
                return
            }
            print(TableOutput.table(["UTC", "LOCAL (\(preview.timeZone))"], preview.fires.map { [$0.at, $0.local] }))
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The runs a schedule started, latest fire time first.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The schedule's id.") var id: String
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.scheduleRuns(id, limit: limit, cursor: cursor) }
            if options.json {
                try printJSON(page)
                return
            }
            print(TableOutput.table(["SCHEDULED AT", "FIRED AT", "RUN"], page.items.map { [$0.scheduledAt, $0.firedAt ?? "", $0.runID] }))
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }
}

/// `uwf webhook …`: the tenant's webhook subscriptions and their deliveries.
struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Manage webhook subscriptions (Standard Webhooks), their deliveries and redeliveries.",
        subcommands: [Create.self, List.self, Update.self, Delete.self, RotateSecret.self, Deliveries.self, Delivery.self, Redeliver.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Subscribe a URL to events; prints the signing secret once.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The endpoint URL (http or https).") var url: String
        @Option(help: "An id (default: made).") var id: String?
        @Option(help: "Event types, comma-separated (default: all): run.started, run.completed, run.failed, … or *.") var events: String?
        @Option(help: "A description.") var description: String?
        @Option(help: "Use this signing secret (whsec_ and 24-64 bytes in base64) instead of a new one.") var secret: String?

        func run() async throws {
            var fields: [String: JSONValue] = ["url": .string(url)]
            if let secret { fields["secret"] = .string(secret) }
            if let id { fields["id"] = .string(id) }
            if let events { fields["event_types"] = .array(events.split(separator: ",").map { .string(String($0)) }) }
            if let description { fields["description"] = .string(description) }
            let created = try await reportingErrors { try await try options.client.createWebhook(.object(fields)) }
            if options.json {
                try printJSON(created)
            } else {
                print("webhook \(created.webhook.id) -> \(created.webhook.url) (\(created.webhook.eventTypes.joined(separator: ", ")))")
                print("signing secret (shown once): \(created.secret)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List webhook subscriptions.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.webhooks() }
            print(
                TableOutput.table(
                    ["ID", "URL", "EVENTS", "STATUS"],
                    page.items.map {
                        [$0.id, $0.url, $0.eventTypes.joined(separator: ","), $0.status + ($0.disabledReason.map { " (\($0))" } ?? "")]
                    }
                )
            )
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a subscription's URL or events, or turn it off and on.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The webhook's id.") var id: String
        @Option(help: "A new URL.") var url: String?
        @Option(help: "Event types, comma-separated.") var events: String?
        @Flag(help: "Turn deliveries on (after a 410 turned them off, for instance).") var enable = false
        @Flag(help: "Turn deliveries off.") var disable = false

        func run() async throws {
            var fields: [String: JSONValue] = [:]
            if let url { fields["url"] = .string(url) }
            if let events { fields["event_types"] = .array(events.split(separator: ",").map { .string(String($0)) }) }
            if enable { fields["enabled"] = true }
            if disable { fields["enabled"] = false }
            let info = try await reportingErrors { try await try options.client.updateWebhook(id, .object(fields)) }
            print("webhook \(info.id) -> \(info.url): \(info.status)")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a subscription (its delivery log stays).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The webhook's id.") var id: String

        func run() async throws {
            try await reportingErrors { try await try options.client.deleteWebhook(id) }
            print("deleted \(id)")
        }
    }

    struct RotateSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new signing secret; the old one also signs for a grace period.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The webhook's id.") var id: String
        @Option(help: "Seconds the old secret keeps signing (default 86400).") var graceSeconds: Int?

        func run() async throws {
            let rotated = try await reportingErrors { try await try options.client.rotateWebhookSecret(id, graceSeconds: graceSeconds) }
            print("new signing secret (shown once): \(rotated.secret)")
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Deliveries, newest first (failed ones are the dead letters).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Only this webhook's.") var id: String?
        @Option(help: "pending, succeeded or failed.") var status: String?
        @Option(help: "Page size.") var limit: Int?
        @Option(help: "The next_cursor of the previous page.") var cursor: String?

        func run() async throws {
            let page = try await reportingErrors {
                try await try options.client.webhookDeliveries(webhook: id, status: status, limit: limit, cursor: cursor)
            }
            if options.json {
                try printJSON(page)
                return
            }
            print(
                TableOutput.table(
                    ["ID", "WEBHOOK", "EVENT", "STATUS", "ATTEMPTS", "LAST"],
                    page.items.map {
                        [
                            $0.id, $0.webhookID, $0.eventType, $0.status, String($0.attempts),
                            $0.lastStatusCode.map(String.init) ?? ($0.lastError ?? ""),
                        ]
                    }
                )
            )
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }

    struct Delivery: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One delivery with every attempt (status, latency, answer).")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The delivery's id.") var id: String

        func run() async throws {
            let d = try await reportingErrors { try await try options.client.webhookDelivery(id) }
            if options.json {
                try printJSON(d)
                return
            }
            print("\(d.id): \(d.eventType) event \(d.eventID) to \(d.webhookID), \(d.status) after \(d.attempts) attempt(s)")
            print(
                TableOutput.table(
                    ["#", "AT", "STATUS", "MS", "ERROR / ANSWER"],
                    (d.attemptLog ?? []).map {
                        [String($0.number), $0.at, $0.statusCode.map(String.init) ?? "-", String($0.latencyMs), $0.error ?? $0.responseExcerpt ?? ""]
                    }
                )
            )
        }
    }

    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send deliveries again: by id, or every failed one of a webhook.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Delivery ids.") var ids: [String] = []
        @Option(help: "Every delivery of this webhook in --status (default failed).") var webhook: String?
        @Option(help: "failed or succeeded (with --webhook).") var status: String?

        func run() async throws {
            let count = try await reportingErrors { try await try options.client.redeliver(ids: ids, webhook: webhook, status: status) }
            print("redelivering \(count)")
        }
    }
}

/// `uwf events`: the tenant's live events.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Follow the tenant's events as they happen (Server-Sent Events)."
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "Only these types, comma-separated.") var types: String?
    @Option(help: "Start after this stream number (default: from now).") var after: String?
    @Option(help: "Stop after this many events.") var count: Int?

    func run() async throws {
        let path = "/api/v1/events" + (types.map { "?types=\($0)" } ?? "")
        let seen = Counter()
        try await reportingErrors {
            try await try options.client.follow(path, after: after) { event in
                emit(options.json ? event.data : "\(event.id ?? "-")  \(event.type ?? "")  \(event.data)")
                return count.map { seen.increment() < $0 } ?? true
            }
        }
    }
}

/// Prints a wire value as the server's JSON (`--json`).
func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try WireCoding.encode(value), as: UTF8.self))
}

/// Writes a line at once (a follower's output is read as it comes, often through a pipe).
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A count shared with a `@Sendable` closure.
final class Counter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func increment() -> Int {
        lock.withLock {
            value += 1
            return value
        }
    }
}
