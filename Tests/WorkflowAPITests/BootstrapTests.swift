import Foundation
import Testing
import WorkflowTestSupport

/// Secure by default, still two commands: the built binary on a fresh data directory.
@Suite struct BootstrapTests {
    @Test func aNewDatabaseGetsAnAdminKeyPrintedOnceAndWrittenForTheCLI() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-boot-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        // No UWF_BOOTSTRAP_ADMIN_KEY: the server makes the key itself.
        let fresh = ["UWF_BOOTSTRAP_ADMIN_KEY": ""]
        var server = try await UWFProcess.serve(dataDirectory: directory, environment: fresh)
        let keyFile = directory.appendingPathComponent("admin.key")
        let key = try String(contentsOf: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("uwf_") && key.count >= 40)
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile.path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "admin.key is readable by its owner only: \(String(mode ?? 0, radix: 8))")
        #expect(try server.stdout().components(separatedBy: key).count == 2, "the key is printed once")

        // The CLI finds the key in the data directory of a local server; without it, the server refuses.
        let noKey = ["UWF_API_KEY": ""]
        let refused = try await UWFProcess.cli(
            ["runs", "list"],
            server: server.baseURL,
            environment: noKey.merging(["UWF_DATA_DIR": "/nonexistent"]) { $1 }
        )
        #expect(refused.status == 1 && refused.stderr.contains("unauthenticated"), "\(refused.stderr)")
        let listed = try await UWFProcess.cli(["runs", "list", "--data-dir", directory.path], server: server.baseURL, environment: noKey)
        #expect(listed.status == 0, "\(listed.stderr)")
        let viaFlag = try await UWFProcess.cli(["runs", "list", "--api-key", key], server: server.baseURL, environment: noKey)
        #expect(viaFlag.status == 0, "\(viaFlag.stderr)")

        // A restart finds keys in the database: nothing new is made or printed.
        #expect(server.terminate() == 0)
        server = try await UWFProcess.serve(dataDirectory: directory, environment: fresh)
        #expect(try server.stdout().contains("uwf_") == false)
        #expect(try String(contentsOf: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == key)
        #expect(server.terminate() == 0)
    }

    @Test func insecureNoAuthIsLoudAndLetsEveryoneIn() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-open-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await UWFProcess.serve(dataDirectory: directory, extra: ["--insecure-no-auth"], environment: ["UWF_BOOTSTRAP_ADMIN_KEY": ""])
        let listed = try await UWFProcess.cli(
            ["runs", "list"],
            server: server.baseURL,
            environment: ["UWF_API_KEY": "", "UWF_DATA_DIR": "/nonexistent"]
        )
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("admin.key").path), "no key is made")
        #expect(server.terminate() == 0)
        #expect(try String(contentsOf: server.stderrURL, encoding: .utf8).contains("AUTHENTICATION IS OFF"))
    }
}
