import Foundation
import Testing
import WorkflowClient
import WorkflowPrimitive
import WorkflowTestSupport

/// `uwf backup` and `uwf restore` of the embedded database, with the built binary.
@Suite struct BackupTests {
    final class Acknowledged: @unchecked Sendable {
        private var runs: [(id: String, at: ContinuousClock.Instant)] = []
        private let lock = NSLock()
        func add(_ id: String) { lock.withLock { runs.append((id, .now)) } }
        func before(_ instant: ContinuousClock.Instant) -> [String] { lock.withLock { runs.filter { $0.at < instant }.map(\.id) } }
        var count: Int { lock.withLock { runs.count } }
    }

    /// Runs are started without pause while the backup is taken; restored elsewhere, the copy holds every run whose
    /// start was acknowledged (committed) before the backup began.
    @Test func aBackupTakenUnderLoadHoldsEveryRunCommittedBeforeItBegan() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-backup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let original = root.appendingPathComponent("data")
        let restored = root.appendingPathComponent("restored")
        let file = root.appendingPathComponent("copy.sqlite").path
        let server = try await UWFProcess.serve(dataDirectory: original)
        let client = WorkflowClient(baseURL: server.baseURL, apiKey: testAdminKey)
        _ = try await client.registerWorkflow(
            Data(#"{"name": "tick", "version": "1.0.0", "definition": {"steps": [{"id": "a", "type": "noop"}]}}"#.utf8),
            yaml: false
        )
        let acknowledged = Acknowledged()
        let load = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !Task.isCancelled {
                            if let started = try? await client.start(workflow: "tick") { acknowledged.add(started.runId) }
                        }
                    }
                }
            }
        }
        while acknowledged.count < 50 { try await Task.sleep(for: .milliseconds(20)) }
        let began = ContinuousClock.now
        let backup = try await UWFProcess.cli(["backup", "--data-dir", original.path, "--to", file], server: server.baseURL)
        try await Task.sleep(for: .milliseconds(300))
        load.cancel()
        _ = await load.value
        #expect(backup.status == 0, "\(backup.stderr)")
        let again = try await UWFProcess.cli(["backup", "--data-dir", original.path, "--to", file], server: server.baseURL)
        #expect(again.status != 0 && again.stderr.contains("never overwrites"), "a backup never overwrites a file")
        _ = server.terminate()

        let restore = try await UWFProcess.cli(["restore", "--data-dir", restored.path, "--from", file], server: server.baseURL)
        #expect(restore.status == 0, "\(restore.stderr)")
        // The same master key goes with it (a deployment keeps it apart from database backups).
        try FileManager.default.copyItem(at: original.appendingPathComponent("master.key"), to: restored.appendingPathComponent("master.key"))
        let second = try await UWFProcess.serve(dataDirectory: restored)
        defer { _ = second.terminate() }
        let restoredClient = WorkflowClient(baseURL: second.baseURL, apiKey: testAdminKey)
        let committed = acknowledged.before(began)
        #expect(committed.count >= 50)
        var missing: [String] = []
        for id in committed {
            do {
                _ = try await restoredClient.run(id)
            } catch {
                missing.append(id)
            }
        }
        #expect(missing.isEmpty, "\(missing.count) of \(committed.count) runs committed before the backup are missing")
        // And the restored server runs work as before.
        let fresh = try await restoredClient.start(workflow: "tick")
        #expect(try await restoredClient.wait(for: fresh.runId, timeout: .seconds(30)).status == RunStatus.completed)
        // Retention by hand: every finished run goes (dead letters and unfinished trees would stay), audited.
        let purge = try await UWFProcess.cli(["purge", "--older-than-days", "0"], server: second.baseURL)
        #expect(purge.status == 0 && purge.stdout.contains("purged"), "\(purge.stdout) \(purge.stderr)")
        let count = Int(purge.stdout.split(separator: " ").dropFirst().first ?? "") ?? 0
        #expect(count >= committed.count, "\(purge.stdout)")
        await #expect(throws: WorkflowError.self) { _ = try await restoredClient.run(committed[0]) }
        let audit = try await restoredClient.audit(filters: ["action": "runs.purge"])
        #expect(audit.items.count == 1)
        let broken = root.appendingPathComponent("broken.sqlite").path
        try Data("not a database".utf8).write(to: URL(fileURLWithPath: broken))
        let refused = try await UWFProcess.cli(
            ["restore", "--data-dir", root.appendingPathComponent("x").path, "--from", broken],
            server: second.baseURL
        )
        #expect(refused.status != 0, "a file that is not a database is not restored: \(refused.stderr)")
    }
}
