import ArgumentParser
import Foundation
import WorkflowClient
import WorkflowStoreSQLite

/// `uwf backup`: an online copy of the embedded SQLite database.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the embedded SQLite database, consistently, while the server runs (PostgreSQL: see docs/deployment.md)."
    )
    @Option(name: .customLong("data-dir"), help: "The server's data directory (default ./data).") var dataDirectory = "./data"
    @Option(help: "The file to write (must not exist).") var to: String

    func run() async throws {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("uwf.sqlite").path
        let runs = try await reportingErrors { try SQLiteBackup.backup(databaseAt: path, to: to) }
        print("backed up \(path) to \(to) (\(runs) runs); keep \(dataDirectory)/master.key safe too, and apart from it")
    }
}

/// `uwf restore`: puts a backup in place (the server must be stopped).
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Put a backup in place of the embedded database; stop the server first (the old database is kept beside it)."
    )
    @Option(name: .customLong("data-dir"), help: "The server's data directory (default ./data).") var dataDirectory = "./data"
    @Option(help: "The backup file.") var from: String

    func run() async throws {
        let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("uwf.sqlite").path
        let runs = try await reportingErrors { try SQLiteBackup.restore(from: from, to: path) }
        print("restored \(from) to \(path) (\(runs) runs); start the server with the same master key")
    }
}

/// `uwf purge`: retention by hand.
struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete the tenant's finished runs older than N days (dead letters and unfinished trees stay)."
    )
    @OptionGroup var options: ClientOptions
    @Option(help: "Age in days (by creation).") var olderThanDays: Double

    func run() async throws {
        let purged = try await reportingErrors { try await try options.client.purge(olderThanDays: olderThanDays) }
        print("purged \(purged) runs (with their children, steps and history)")
    }
}
