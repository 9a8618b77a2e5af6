import Foundation
import Logging
import ServiceLifecycle
import WorkflowStore

/// Writes each tenant's audit head (newest sequence number and hash) to the log, and to a file when configured, at an
/// interval. A hash chain cannot show that its newest entries were deleted together with its head; a checkpoint kept
/// outside the database can: `uwf audit verify --checkpoint <seq>:<hash>` fails if that entry is gone or different.
struct AuditCheckpointer: Service {
    let store: any WorkflowStore
    let interval: Duration
    let file: String?
    let logger: Logger

    func run() async throws {
        // Stops at once on SIGTERM: a service that sleeps through graceful shutdown holds the process for the whole
        // grace period.
        try? await cancelWhenGracefulShutdown {
            var last: [String: AuditHead] = [:]
            while true {
                try await Task.sleep(for: interval)
                do {
                    for tenant in try await store.auditTenants() {
                        guard let head = try await store.auditHead(tenantID: tenant), last[tenant] != head else { continue }
                        last[tenant] = head
                        logger.notice(
                            "audit checkpoint",
                            metadata: ["tenant": .string(tenant), "seq": .stringConvertible(head.seq), "hash": .string(head.hash)]
                        )
                        if let file { try append(tenant: tenant, head: head, to: file) }
                    }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("audit checkpoint skipped", metadata: ["error": .string("\(error)")])
                }
            }
        }
    }

    private func append(tenant: String, head: AuditHead, to path: String) throws {
        let line = #"{"at":"\#(Date().ISO8601Format())","tenant":"\#(tenant)","seq":\#(head.seq),"hash":"\#(head.hash)"}"# + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
    }
}
