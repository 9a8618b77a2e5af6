import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import WorkflowAPI
import WorkflowEngine
import WorkflowRegistry
import WorkflowStore
import WorkflowStoreSQLite

/// `uwf serve`: the API, the engine and the database in one process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the server: REST API and engine on an embedded SQLite database.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(name: .customLong("data-dir"), help: "Directory of the embedded SQLite database.") var dataDirectory = "./data"
    @Option(help: "SQLite commit durability: full (survives power loss) or normal (survives a process crash).")
    var sqliteSynchronous = "full"
    @Option(help: "Largest request body in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Step attempts executing at once.") var maxConcurrentSteps = 64
    @Option(help: "Seconds a claimed task stays leased without a heartbeat.") var leaseSeconds = 30
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
        guard SQLiteStoreConfiguration.Synchronous(rawValue: sqliteSynchronous.uppercased()) != nil else {
            throw ValidationError("--sqlite-synchronous must be full or normal")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard leaseSeconds >= 2 else { throw ValidationError("--lease-seconds must be at least 2") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "uwf")

        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("uwf.sqlite").path
        let store = try SQLiteStore(configuration: .init(
            path: path, synchronous: .init(rawValue: sqliteSynchronous.uppercased()) ?? .full))
        let registry = WorkflowRegistry(store: store)
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        var engineConfiguration = EngineConfiguration(maxConcurrentSteps: maxConcurrentSteps)
        engineConfiguration.leaseDuration = .seconds(leaseSeconds)
        engineConfiguration.heartbeatInterval = .milliseconds(Int64(leaseSeconds) * 1000 / 3)
        let engine = WorkflowEngine(
            configuration: engineConfiguration, store: store, registry: registry,
            executors: .builtin(http: HTTPRequestStepExecutor(client: http)), logger: logger)
        let api = WorkflowAPI(store: store, registry: registry, engine: engine, configuration: .init(maxBodyBytes: maxBodyBytes))
        let host = host
        let app = Application(
            router: api.makeRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: "uwf"),
            services: [engine],
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                // Tests and scripts read this line to learn the port when started with --port 0.
                FileHandle.standardOutput.write(Data("uwf listening on http://\(host):\(port) (database \(path))\n".utf8))
            },
            logger: logger)
        do {
            try await app.runService()
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }
}
