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
                print(String(decoding: try WireCoding.encode(page), as: UTF8.self))
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
                print(String(decoding: try WireCoding.encode(answer), as: UTF8.self))
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
                print(String(decoding: try WireCoding.encode(page), as: UTF8.self))
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
                print(String(decoding: try WireCoding.encode(preview), as: UTF8.self))
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
                print(String(decoding: try WireCoding.encode(page), as: UTF8.self))
                return
            }
            print(TableOutput.table(["SCHEDULED AT", "FIRED AT", "RUN"], page.items.map { [$0.scheduledAt, $0.firedAt ?? "", $0.runID] }))
            if let next = page.nextCursor { print("more: --cursor \(next)") }
        }
    }
}
