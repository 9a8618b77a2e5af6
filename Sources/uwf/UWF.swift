import ArgumentParser
import Foundation

/// `uwf`: the workflow server and its command-line client.
@main
struct UWF: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uwf",
        abstract: "Unified Workflow: durable workflow orchestration.",
        version: uwfVersion,
        subcommands: [
            ServeCommand.self, BenchCommand.self, WorkflowCommand.self, RunCommand.self, StatusCommand.self, RunsCommand.self,
            CancelCommand.self, HistoryCommand.self, SignalCommand.self, RetryCommand.self, RerunCommand.self,
            DeadLettersCommand.self,
        ]
    )
}

/// The version `uwf --version` prints.
let uwfVersion = "0.9.0-dev"

/// Options every client subcommand shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Base URL of the uwf server (default: $UWF_SERVER or http://127.0.0.1:8080).")
    var server: String?

    @Flag(name: .long, help: "Print the server's JSON instead of a table.")
    var json = false

    var baseURL: String {
        server ?? ProcessInfo.processInfo.environment["UWF_SERVER"] ?? "http://127.0.0.1:8080"
    }
}
