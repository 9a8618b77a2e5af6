import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing
import WorkflowPrimitive
import WorkflowTestSupport

/// Payload encryption at rest: callers see plaintext, the database holds none of a marked payload.
@Suite struct PayloadEncryptionTests {
    static let workflow = """
        {"name": "kyc", "version": "1.0.0", "definition": {"steps": [
          {"id": "docs", "type": "wait_for_signal", "config": {"signal": "documents"}},
          {"id": "check", "type": "transform", "depends_on": ["docs"],
           "config": {"output": {"iban": "${input.iban}", "note": "${steps.docs.output.note}"}}}
        ], "output": {"checked": "${steps.check.output}"}}}
        """

    /// Starts a run with `iban`, signals it with `note`, waits for it, and returns the run as the API shows it.
    static func run(_ client: any TestClientProtocol, iban: String, note: String) async throws -> (id: String, run: JSONValue) {
        let (_, started, _) = try await client.call(.post, "/api/v1/execute", #"{"workflow_name": "kyc", "input": {"iban": "\#(iban)"}}"#)
        let id = try #require(started["run_id"]?.stringValue)
        try await waitUntil { try await ApprovalStepTests.stepStatus(client, id, "docs") == "WAITING" }
        #expect(try await client.call(.post, "/api/v1/executions/\(id)/signals/documents", #"{"note": "\#(note)"}"#).status == .accepted)
        return (id, try await client.waitForRun(id))
    }

    /// Everything the database holds, as text.
    static func dump(_ environment: APITestEnvironment) async throws -> String {
        if let path = environment.sqlitePath {
            return [path, path + "-wal"].map { String(decoding: FileManager.default.contents(atPath: $0) ?? Data(), as: UTF8.self) }.joined()
        }
        var text = ""
        for table in ["runs", "step_runs", "run_events", "tasks", "audit_log"] {
            for row in try await environment.postgres!.client.query(PostgresQuery(unsafeSQL: "SELECT t::text FROM \(table) t")).collect() {
                text += try row.decode(String.self)
            }
        }
        return text
    }

    @Test(arguments: APIDriver.all) func markedPayloadsNeverReachTheDatabaseInPlaintext(_ driver: APIDriver) async throws {
        try await withAPIEnvironment(driver) { client, environment in
            #expect(try await client.call(.post, "/api/v1/workflows", Self.workflow).status == .created)
            // Before: stored as it is.
            let before = try await Self.run(client, iban: "PLAIN-IBAN-1111", note: "PLAIN-NOTE-2222")
            #expect(before.run["status"] == "COMPLETED")
            #expect(try await Self.dump(environment).contains("PLAIN-IBAN-1111"))

            let (set, settings, _) = try await client.call(.put, "/api/v1/tenant/settings", #"{"encrypt_payloads": true}"#)
            #expect(set == .ok && settings["encrypt_payloads"] == true && settings["data_key"] == nil, "\(settings)")
            #expect(try await client.call(.get, "/api/v1/tenant/settings").json["encrypt_payloads"] == true)

            let after = try await Self.run(client, iban: "SECRET-IBAN-3333", note: "SECRET-NOTE-4444")
            // Callers allowed to read see plaintext: the run, its steps, its history, the original system's data route.
            #expect(after.run["status"] == "COMPLETED", "\(after.run)")
            #expect(after.run["input"]?["iban"] == "SECRET-IBAN-3333")
            #expect(after.run["output"]?["checked"] == ["iban": "SECRET-IBAN-3333", "note": "SECRET-NOTE-4444"], "\(after.run)")
            #expect(after.run["steps"]?.arrayValue?.first { $0["id"] == "docs" }?["output"]?["note"] == "SECRET-NOTE-4444")
            let (_, history, _) = try await client.call(.get, "/api/v1/executions/\(after.id)/history")
            #expect(!history.canonicalString().contains("uwf_sealed"), "the history is opened for the caller")
            let (_, data, _) = try await client.call(.get, "/api/workflows/data/\(after.id)")
            #expect(data.canonicalString().contains("SECRET-NOTE-4444"))
            // The database holds none of it, and the earlier run is still readable.
            let stored = try await Self.dump(environment)
            for marker in ["SECRET-IBAN-3333", "SECRET-NOTE-4444"] { #expect(!stored.contains(marker), "\(marker) is stored in plaintext") }
            #expect(stored.contains("$uwf_sealed"))
            let (_, old, _) = try await client.call(.get, "/api/v1/executions/\(before.id)")
            #expect(old["input"]?["iban"] == "PLAIN-IBAN-1111")

            // Turned off, new runs are stored as they are; sealed ones stay readable.
            #expect(try await client.call(.put, "/api/v1/tenant/settings", #"{"encrypt_payloads": false}"#).status == .ok)
            let (_, sealed, _) = try await client.call(.get, "/api/v1/executions/\(after.id)")
            #expect(sealed["input"]?["iban"] == "SECRET-IBAN-3333")
            let off = try await Self.run(client, iban: "LATER-IBAN-5555", note: "LATER-NOTE-6666")
            #expect(off.run["status"] == "COMPLETED")
            #expect(try await Self.dump(environment).contains("LATER-IBAN-5555"))
        }
    }
}
