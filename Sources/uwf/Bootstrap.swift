import ArgumentParser
import Foundation
import Logging
import WorkflowIdentity
import WorkflowStore

/// Securing a new database.
enum Bootstrap {
    /// The id of the first admin key.
    static let keyID = "bootstrap-admin"

    /// On a database without keys, creates an admin key for the default tenant, prints it once and writes it to
    /// `<data-dir>/admin.key` (mode 0600), where the CLI finds it. `UWF_BOOTSTRAP_ADMIN_KEY` supplies the key instead
    /// (a secret the operator generated, e.g. for a cluster); it is then neither printed nor written.
    static func adminKey(store: any WorkflowStore, dataDirectory: String, logger: Logger) async throws {
        guard try await store.apiKeyCount() == 0 else { return }
        let provided = ProcessInfo.processInfo.environment["UWF_BOOTSTRAP_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        if let provided, !APIKeys.looksLikeKey(provided) {
            throw ValidationError("UWF_BOOTSTRAP_ADMIN_KEY must look like an API key: uwf_ and 16 or more letters, digits, '-' or '_'")
        }
        let secret = provided ?? APIKeys.generate()
        let record = APIKeyRecord(
            id: keyID,
            tenantID: defaultTenantID,
            name: "bootstrap admin",
            prefix: APIKeys.displayPrefix(secret),
            hash: APIKeys.hash(secret),
            roles: ["admin"],
            createdAt: Date(),
            createdBy: "uwf serve"
        )
        // Another node of a cluster may have won the race: then it printed its key, and this node says nothing.
        guard try await store.apiKeyInsert(record) else { return }
        guard provided == nil else {
            logger.notice("registered the bootstrap admin API key from UWF_BOOTSTRAP_ADMIN_KEY")
            return
        }
        let directory = URL(fileURLWithPath: dataDirectory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("admin.key").path
        guard FileManager.default.createFile(atPath: path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        FileHandle.standardOutput.write(
            Data(
                """
                uwf: this database had no API keys, so an admin key for the default tenant was created.
                uwf: it is written to \(path) (mode 0600), where the uwf CLI on this machine finds it, and shown only now:
                \(secret)

                """.utf8
            )
        )
    }
}

/// Where the master keys come from: `$UWF_MASTER_KEY`, `--master-key-file`, or on embedded SQLite `<data-dir>/master.key`
/// (made on first start, mode 0600, like admin.key). A cluster on PostgreSQL needs the same keys on every node, so it
/// never makes one up: without keys, secrets are unavailable there.
enum MasterKeys {
    static func load(file: String?, dataDirectory: String?, logger: Logger) throws -> MasterKeyring? {
        if let text = ProcessInfo.processInfo.environment["UWF_MASTER_KEY"], !text.isEmpty {
            return try parse(text, source: "UWF_MASTER_KEY")
        }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read --master-key-file \(file)")
            }
            return try parse(text, source: file)
        }
        guard let dataDirectory else {
            logger.warning("no master key (--master-key-file or UWF_MASTER_KEY): secrets cannot be set or used on this node")
            return nil
        }
        let directory = URL(fileURLWithPath: dataDirectory)
        let path = directory.appendingPathComponent("master.key").path
        if let text = try? String(contentsOfFile: path, encoding: .utf8) { return try parse(text, source: path) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let line = MasterKeyring.generateLine(id: "k1")
        guard FileManager.default.createFile(atPath: path, contents: Data((line + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(path)")
        }
        logger.notice("created a master key for secrets", metadata: ["path": .string(path)])
        return try parse(line, source: path)
    }

    static func parse(_ text: String, source: String) throws -> MasterKeyring {
        do {
            return try MasterKeyring(text: text)
        } catch {
            throw ValidationError("\(source): \(error.message)")
        }
    }
}
