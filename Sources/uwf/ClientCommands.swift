import ArgumentParser
import Foundation
import WorkflowClient
import WorkflowPrimitive

/// `uwf workflow …`: register and list definitions.
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow",
        abstract: "Register, list and review workflow definitions, and move versions through their lifecycle.",
        subcommands: [
            Register.self, List.self, Show.self, Diff.self, Submit.self, Approve.self, Reject.self, Deprecate.self, Retire.self, Activate.self,
        ]
    )

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a definition from a JSON or YAML file.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Definition file (.json, .yaml or .yml; - reads standard input as JSON).") var file: String

        func run() async throws {
            let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try readFile(file)
            let yaml = file.hasSuffix(".yaml") || file.hasSuffix(".yml")
            let (workflow, created) = try await reportingErrors {
                try await try options.client.registerWorkflow(data, yaml: yaml)
            }
            if options.json {
                print(
                    TableOutput.pretty([
                        "id": .string(workflow.id), "name": .string(workflow.name), "version": .string(workflow.version), "created": .bool(created),
                    ])
                )
            } else {
                print("\(created ? "registered" : "already registered"): \(workflow.name) \(workflow.version) (id \(workflow.id))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered definitions, newest first.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Most definitions to show.") var limit = 50

        func run() async throws {
            let page = try await reportingErrors { try await try options.client.workflows(limit: limit) }
            if options.json {
                print(
                    TableOutput.pretty(
                        .array(
                            page.items.map {
                                ["id": .string($0.id), "name": .string($0.name), "version": .string($0.version), "created_at": .string($0.createdAt)]
                            }
                        )
                    )
                )
            } else {
                print(TableOutput.table(["NAME", "VERSION", "ID", "CREATED"], page.items.map { [$0.name, $0.version, $0.id, $0.createdAt] }))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a definition by id or name.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "Workflow id or name.") var workflow: String

        func run() async throws {
            let info = try await reportingErrors { try await try options.client.workflow(workflow) }
            print(
                TableOutput.pretty([
                    "id": .string(info.id), "name": .string(info.name), "version": .string(info.version), "definition": info.definition,
                ])
            )
        }
    }
}

/// `uwf run NAME_OR_ID`: start a run.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start a run of a workflow.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Workflow id or name (a name runs its highest version).") var workflow: String
    @Option(help: "Version to run, with a name.") var version: String?
    @Option(help: "Input as JSON, or @file to read it from a file.") var input: String?
    @Flag(help: "Wait for the run to finish and print its result.") var wait = false
    @Option(help: "Seconds to wait with --wait.") var timeout = 300

    func run() async throws {
        var value: JSONValue = .object([:])
        if let input {
            let data = input.hasPrefix("@") ? try readFile(String(input.dropFirst())) : Data(input.utf8)
            do { value = try JSONValue.parse(data) } catch { throw ValidationError("--input is not valid JSON") }
        }
        let client = try options.client
        let started = try await reportingErrors { try await client.start(workflow: workflow, version: version, input: value) }
        guard wait else {
            print(options.json ? TableOutput.pretty(["run_id": .string(started.runId), "status": .string(started.status.rawValue)]) : started.runId)
            return
        }
        let run = try await reportingErrors { try await client.wait(for: started.runId, timeout: .seconds(timeout)) }
        printRun(run, json: options.json)
        if run.status != .completed { throw ExitCode(run.isFinished ? 1 : 2) }
    }
}

/// `uwf status RUN_ID`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a run and its steps.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String
    @Flag(help: "Print the run's events as they happen until it finishes (Server-Sent Events).") var follow = false

    func run() async throws {
        guard follow else {
            printRun(try await reportingErrors { try await try options.client.run(runID) }, json: options.json)
            return
        }
        let client = try options.client
        try await reportingErrors {
            try await client.follow("/api/v1/executions/\(runID)/events") { event in
                if event.type == "end" { return false }
                if options.json {
                    emit(event.data)
                } else {
                    let data = (try? JSONValue.parse(Data(event.data.utf8))) ?? .null
                    let step = data["step_id"]?.stringValue.map { " \($0)" } ?? ""
                    emit("\(data["at"]?.stringValue ?? "")  \(event.type ?? "")\(step)")
                }
                return true
            }
        }
        if !options.json { printRun(try await reportingErrors { try await client.run(runID) }, json: false) }
    }
}

/// `uwf runs list`.
struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "runs", abstract: "List and watch runs.", subcommands: [List.self, Watch.self])

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print runs as they start, finish and fail (the tenant's live events).")
        @OptionGroup var options: ClientOptions
        @Option(help: "Stop after this many events.") var count: Int?

        func run() async throws {
            let seen = Counter()
            let client = try options.client
            try await reportingErrors {
                try await client.follow("/api/v1/events?types=run.started,run.completed,run.failed,run.cancelled,step.failed") { event in
                    if options.json {
                        emit(event.data)
                    } else {
                        let data = (try? JSONValue.parse(Data(event.data.utf8))) ?? .null
                        let payload = data["payload"] ?? .null
                        let step = payload["step_id"]?.stringValue.map { " step \($0)" } ?? ""
                        emit(
                            "\(data["timestamp"]?.stringValue ?? "")  \(event.type ?? "")  \(payload["run_id"]?.stringValue ?? "")  \(payload["workflow"]?.stringValue ?? "")\(step)"
                        )
                    }
                    return count.map { seen.increment() < $0 } ?? true
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List runs, newest first.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Only runs with this status (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED).") var status: String?
        @Option(help: "Only runs of this workflow (id or name).") var workflow: String?
        @Option(help: "Most runs to show.") var limit = 50

        func run() async throws {
            var wanted: RunStatus?
            if let status {
                guard let s = RunStatus(rawValue: status.uppercased()) else {
                    throw ValidationError("--status must be one of \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                wanted = s
            }
            let page = try await reportingErrors {
                try await try options.client.runs(status: wanted, workflow: workflow, limit: limit)
            }
            if options.json {
                print(
                    TableOutput.pretty(
                        .array(
                            page.items.map {
                                [
                                    "run_id": .string($0.runId), "status": .string($0.status.rawValue), "workflow": .string($0.workflowName),
                                    "created_at": .string($0.createdAt),
                                ]
                            }
                        )
                    )
                )
            } else {
                print(
                    TableOutput.table(
                        ["RUN", "WORKFLOW", "VERSION", "STATUS", "CREATED"],
                        page.items.map { [$0.runId, $0.workflowName, $0.workflowVersion, $0.status.rawValue, $0.createdAt] }
                    )
                )
            }
        }
    }
}

/// `uwf cancel RUN_ID`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a run.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String

    func run() async throws {
        try await reportingErrors { try await try options.client.cancel(runID) }
        print(options.json ? TableOutput.pretty(["run_id": .string(runID), "status": "CANCELLED"]) : "cancelled \(runID)")
    }
}

/// `uwf signal RUN_ID NAME [--data JSON]`.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "signal", abstract: "Send a signal to a run (a wait_for_signal step).")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String
    @Argument(help: "Signal name.") var name: String
    @Option(help: "The signal's JSON payload, or @file to read it from a file.") var data: String?

    func run() async throws {
        var payload: JSONValue = .object([:])
        if let data {
            let bytes = data.hasPrefix("@") ? try readFile(String(data.dropFirst())) : Data(data.utf8)
            do { payload = try JSONValue.parse(bytes) } catch { throw ValidationError("--data is not valid JSON") }
        }
        try await reportingErrors { try await try options.client.signal(runID, name: name, payload: payload) }
        print(options.json ? TableOutput.pretty(["run_id": .string(runID), "signal": .string(name)]) : "sent \(name) to \(runID)")
    }
}

/// `uwf retry RUN_ID`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Resume a FAILED or CANCELLED run in place, keeping what succeeded."
    )
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String

    func run() async throws {
        try await reportingErrors { try await try options.client.retry(runID) }
        print(options.json ? TableOutput.pretty(["run_id": .string(runID), "status": "RUNNING"]) : "resumed \(runID)")
    }
}

/// `uwf rerun RUN_ID [--input JSON]`.
struct RerunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rerun", abstract: "Start a new run like an earlier one.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String
    @Option(help: "New input as JSON, or @file (default: the earlier run's input).") var input: String?

    func run() async throws {
        var value: JSONValue?
        if let input {
            let data = input.hasPrefix("@") ? try readFile(String(input.dropFirst())) : Data(input.utf8)
            do { value = try JSONValue.parse(data) } catch { throw ValidationError("--input is not valid JSON") }
        }
        let started = try await reportingErrors { try await try options.client.rerun(runID, input: value) }
        print(options.json ? TableOutput.pretty(["run_id": .string(started.runId), "rerun_of": .string(runID)]) : started.runId)
    }
}

/// `uwf dead-letters [--dismiss RUN_ID]`.
struct DeadLettersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letters",
        abstract: "List failed runs waiting for an operator, or dismiss one."
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "Take this run off the list.") var dismiss: String?
    @Option(help: "Most entries to show.") var limit = 50

    func run() async throws {
        let client = try options.client
        if let dismiss {
            try await reportingErrors { try await client.dismissDeadLetter(dismiss) }
            print(options.json ? TableOutput.pretty(["run_id": .string(dismiss), "dismissed": true]) : "dismissed \(dismiss)")
            return
        }
        let page = try await reportingErrors { try await client.deadLetters(limit: limit) }
        if options.json {
            print(
                TableOutput.pretty(
                    .array(
                        page.items.map {
                            [
                                "run_id": .string($0.runId), "workflow": .string($0.workflowName),
                                "failed_step": $0.failedStep.map(JSONValue.string) ?? .null,
                                "error": $0.error ?? .null, "failed_at": $0.failedAt.map(JSONValue.string) ?? .null,
                            ]
                        }
                    )
                )
            )
        } else {
            print(
                TableOutput.table(
                    ["RUN", "WORKFLOW", "FAILED STEP", "ERROR", "FAILED AT"],
                    page.items.map {
                        [$0.runId, $0.workflowName, $0.failedStep ?? "", $0.error?["message"]?.stringValue ?? "", $0.failedAt ?? ""]
                    }
                )
            )
        }
    }
}

/// `uwf history RUN_ID`.
struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Show a run's history of events.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Run id.") var runID: String

    func run() async throws {
        let events = try await reportingErrors { try await try options.client.history(runID) }.items
        if options.json {
            print(
                TableOutput.pretty(
                    .array(
                        events.map {
                            [
                                "seq": .number(Double($0.seq)), "type": .string($0.type), "step_id": $0.stepId.map(JSONValue.string) ?? .null,
                                "at": .string($0.at), "data": $0.data,
                            ]
                        }
                    )
                )
            )
        } else {
            print(
                TableOutput.table(
                    ["SEQ", "AT", "TYPE", "STEP", "DATA"],
                    events.map { [String($0.seq), $0.at, $0.type, $0.stepId ?? "", TableOutput.compact($0.data)] }
                )
            )
        }
    }
}

private func printRun(_ detail: RunDetail, json: Bool) {
    let run = detail.summary
    if json {
        let steps: [JSONValue] = detail.steps.map {
            [
                "id": .string($0.id), "status": .string($0.status.rawValue), "attempts": .number(Double($0.attempts)),
                "output": $0.output ?? .null, "error": $0.error ?? .null,
            ]
        }
        var fields: [String: JSONValue] = [
            "run_id": .string(run.runId), "workflow_id": .string(run.workflowId), "status": .string(run.status.rawValue),
            "output": detail.output ?? .null, "error": run.error ?? .null, "steps": .array(steps),
        ]
        if let compensated = run.compensated { fields["compensated"] = .bool(compensated) }
        print(TableOutput.pretty(.object(fields)))
        return
    }
    print("run       \(run.runId)")
    print("workflow  \(run.workflowName) \(run.workflowVersion)")
    print("status    \(run.status.rawValue)\(run.compensated.map { $0 ? " (compensated)" : " (compensation incomplete)" } ?? "")")
    if let error = run.error, !error.isNull { print("error     \(error["message"]?.stringValue ?? error.canonicalString())") }
    if let output = detail.output, !output.isNull { print("output    \(output.canonicalString())") }
    let steps = detail.steps
    if !steps.isEmpty {
        print("")
        print(
            TableOutput.table(
                ["STEP", "STATUS", "ATTEMPTS", "OUTPUT / ERROR"],
                steps.map {
                    [
                        $0.id, $0.status.rawValue, String($0.attempts),
                        TableOutput.compact(($0.error?.isNull ?? true) ? $0.output : $0.error?["message"]),
                    ]
                }
            )
        )
    }
}

/// Turns the server's problem responses into one readable line and a non-zero exit.
@discardableResult
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as WorkflowError {
        var message = "error: \(error.message) [\(error.code)]"
        for issue in error.issues { message += "\n  \(issue.pointer.isEmpty ? "/" : issue.pointer): \(issue.message)" }
        FileHandle.standardError.write(Data((message + "\n").utf8))
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Reads a file named on the command line; a missing or unreadable file is a usage error that names the file.
func readFile(_ path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no such file: \(path)") }
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
    return data
}

/// `uwf health`: a probe for containers and scripts (no credentials needed); exit 0 when the node answers.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 when the server is alive (or, with --ready, ready for traffic); 1 otherwise. For container health checks."
    )
    @Option(name: .long, help: "Base URL of the uwf server (default: $UWF_SERVER or http://127.0.0.1:8080).") var server: String?
    @Flag(help: "Ask /health/ready (the database answers, not shutting down) instead of /health.") var ready = false
    @Option(name: .customLong("ca-cert"), help: "PEM certificate(s) to trust for an https server.") var caCert: String?
    @Option(help: "Seconds to wait for the answer.") var timeoutSeconds: Double = 3

    func validate() throws {
        guard timeoutSeconds > 0, timeoutSeconds <= 60 else { throw ValidationError("--timeout-seconds must be more than 0 and at most 60") }
    }

    func run() async throws {
        let base = server ?? ProcessInfo.processInfo.environment["UWF_SERVER"] ?? "http://127.0.0.1:8080"
        // A probe answers quickly: a refused connection is otherwise retried until the request's deadline.
        let timeout = Duration.milliseconds(Int64(timeoutSeconds * 1000))
        let client =
            try caCert.map { WorkflowClient(baseURL: base, apiKey: nil, httpClient: try TrustedClients.client(trusting: $0), timeout: timeout) }
            ?? WorkflowClient(baseURL: base, apiKey: nil, timeout: timeout)
        let ok = (try? await (ready ? client.ready() : client.health())) ?? false
        print(ok ? (ready ? "ready" : "ok") : "unhealthy")
        if !ok { throw ExitCode(1) }
    }
}
