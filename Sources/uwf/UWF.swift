import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOSSL
import Synchronization
import WorkflowClient

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
            DeadLettersCommand.self, APIKeyCommand.self, TenantCommand.self, ApproveCommand.self, RejectCommand.self, ApprovalsCommand.self,
            AuditCommand.self, SecretCommand.self, ScheduleCommand.self, WebhookCommand.self, EventsCommand.self,
            BackupCommand.self, RestoreCommand.self, PurgeCommand.self, ConfigCommand.self, HealthCommand.self,
        ]
    )

    /// `uwf serve` reads its configuration file and `UWF_*` variables before its flags are parsed (see
    /// `ServeSettings`): they become flags placed ahead of the typed ones, which win.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "serve" {
            do {
                arguments =
                    ["serve"] + (try ServeSettings.resolve(Array(arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)).arguments
            } catch {
                FileHandle.standardError.write(Data("uwf serve: \(error)\n".utf8))
                Foundation.exit(64)  // EX_USAGE
            }
        }
        await Self.main(arguments)
    }
}

/// The version `uwf --version` prints.
let uwfVersion = "0.9.0-dev"

/// Options every client subcommand shares.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Base URL of the uwf server (default: $UWF_SERVER or http://127.0.0.1:8080).")
    var server: String?

    @Flag(name: .long, help: "Print the server's JSON instead of a table.")
    var json = false

    @Option(name: .long, help: "API key (default: $UWF_API_KEY, or <data-dir>/admin.key when the server is on this machine).")
    var apiKey: String?

    @Option(
        name: .customLong("data-dir"),
        help: "Data directory of a local server, where its bootstrap admin.key is (default: $UWF_DATA_DIR or ./data)."
    )
    var dataDirectory: String?

    var baseURL: String {
        server ?? ProcessInfo.processInfo.environment["UWF_SERVER"] ?? "http://127.0.0.1:8080"
    }

    /// The key to send: `--api-key`, `$UWF_API_KEY`, or the bootstrap key a local server wrote to its data directory.
    var resolvedAPIKey: String? {
        if let apiKey { return apiKey }
        if let key = ProcessInfo.processInfo.environment["UWF_API_KEY"], !key.isEmpty { return key }
        guard let host = URL(string: baseURL)?.host, ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) else { return nil }
        let directory = dataDirectory ?? ProcessInfo.processInfo.environment["UWF_DATA_DIR"] ?? "./data"
        let path = URL(fileURLWithPath: directory).appendingPathComponent("admin.key").path
        return (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Option(name: .customLong("ca-cert"), help: "PEM certificate(s) to trust for an https server (default: the system's).")
    var caCert: String?

    /// A client of the server these options name, with its key.
    var client: WorkflowClient {
        get throws {
            guard let caCert else { return WorkflowClient(baseURL: baseURL, apiKey: resolvedAPIKey) }
            return WorkflowClient(baseURL: baseURL, apiKey: resolvedAPIKey, httpClient: try TrustedClients.client(trusting: caCert))
        }
    }
}

/// HTTP clients that trust a given CA, one per file, kept for the life of the process (a CLI command).
enum TrustedClients {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(trusting path: String) throws -> HTTPClient {
        guard FileManager.default.isReadableFile(atPath: path) else { throw ValidationError("cannot read --ca-cert \(path)") }
        return clients.withLock { clients in
            if let client = clients[path] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(path)
            tls.minimumTLSVersion = .tlsv12
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            clients[path] = client
            return client
        }
    }
}
