import Foundation
import HummingbirdTesting
import Testing
import WorkflowPrimitive

@Suite struct WorkflowRoutesTests {
    @Test func healthAndReadiness() async throws {
        try await withAPI { client in
            let health = try await client.call(.get, "/health")
            #expect(health.status == .ok && health.json == ["status": "ok"])
            #expect(try await client.call(.get, "/health/ready").status == .ok)
        }
    }

    @Test func registerIsIdempotentAndVersionsAreImmutable() async throws {
        try await withAPI { client in
            let created = try await client.call(.post, "/api/v1/workflows", sequenceWorkflow)
            #expect(created.status == .created)
            let id = try #require(created.json["id"]?.stringValue)
            #expect(created.json["name"] == "greet" && created.json["version"] == "1.0.0" && created.json["description"] == "says hello")
            #expect(created.json["definition"]?["steps"]?.arrayValue?.count == 2)
            #expect(created.json["created_at"]?.stringValue?.hasSuffix("Z") == true)
            #expect(created.headers[.location] == "/api/v1/workflows/\(id)")

            let again = try await client.call(.post, "/api/v1/workflows", sequenceWorkflow)
            #expect(again.status == .ok)
            #expect(again.json["id"]?.stringValue == id)

            let changed = try await client.call(.post, "/api/v1/workflows", sequenceWorkflow.replacingOccurrences(of: "hello ${", with: "hi ${"))
            #expect(changed.status == .conflict)
            #expect(changed.json["code"] == "version_conflict")
            #expect(changed.headers[.contentType] == "application/problem+json")

            #expect(try await client.call(.get, "/api/v1/workflows/\(id)").json["name"] == "greet")
            #expect(try await client.call(.get, "/api/v1/workflows/greet").json["id"]?.stringValue == id)
            #expect(try await client.call(.get, "/api/workflows/definition/\(id)").json["name"] == "greet")
            let missing = try await client.call(.get, "/api/v1/workflows/nope")
            #expect(missing.status == .notFound && missing.json["code"] == "workflow_not_found")
        }
    }

    @Test func registersYAML() async throws {
        try await withAPI { client in
            let yaml = """
                name: yaml-flow
                version: 0.1.0
                definition:
                  steps:
                    - name: first
                      type: echo
                      config: {n: 1}
                """
            let created = try await client.call(.post, "/api/v1/workflows", yaml, contentType: "application/yaml")
            #expect(created.status == .created)
            #expect(created.json["definition"]?["steps"]?.arrayValue?.first?["name"] == "first")
            let bad = try await client.call(.post, "/api/v1/workflows", "name: [", contentType: "application/yaml")
            #expect(bad.status == .badRequest && bad.json["code"] == "malformed_body")
        }
    }

    @Test func invalidDefinitionsGet422WithPointers() async throws {
        try await withAPI { client in
            let response = try await client.call(
                .post,
                "/api/v1/workflows",
                """
                {"name": "bad", "version": "1", "definition": {"steps": [
                  {"id": "a", "type": "nope"}, {"id": "b", "type": "echo", "depends_on": ["a", "ghost"], "when": "input.x ="}]}}
                """
            )
            #expect(response.status == .unprocessableContent)
            #expect(response.json["code"] == "invalid_definition")
            #expect(response.json["type"] == "urn:uwf:problem:invalid_definition")
            #expect(response.json["status"] == 422)
            #expect(response.json["title"] == "Unprocessable Content")
            let pointers = Set(response.json["errors"]?.arrayValue?.compactMap { $0["pointer"]?.stringValue } ?? [])
            #expect(pointers == ["/version", "/definition/steps/0/type", "/definition/steps/1/depends_on/1", "/definition/steps/1/when"])
            // Nothing was written.
            #expect(try await client.call(.get, "/api/v1/workflows").json["workflows"] == [])
        }
    }

    @Test func malformedAndOversizedBodies() async throws {
        try await withAPI(maxBodyBytes: 4096) { client in
            let malformed = try await client.call(.post, "/api/v1/workflows", "{\"name\": ")
            #expect(malformed.status == .badRequest && malformed.json["code"] == "malformed_body")
            let big = try await client.call(.post, "/api/v1/workflows", "{\"name\": \"" + String(repeating: "x", count: 5000) + "\"}")
            #expect(big.status == .contentTooLarge && big.json["code"] == "payload_too_large")
            let unknownRoute = try await client.call(.get, "/api/v1/nothing-here")
            #expect(unknownRoute.status == .notFound && unknownRoute.json["code"] == "not_found")
        }
    }

    @Test func listsWorkflowsWithCursor() async throws {
        try await withAPI { client in
            for v in ["1.0.0", "1.1.0", "2.0.0"] {
                try await client.call(.post, "/api/v1/workflows", sequenceWorkflow.replacingOccurrences(of: "1.0.0", with: v))
            }
            let first = try await client.call(.get, "/api/v1/workflows?limit=2")
            #expect(first.json["workflows"]?.arrayValue?.map { $0["version"] } == ["2.0.0", "1.1.0"])
            let cursor = try #require(first.json["next_cursor"]?.stringValue)
            let second = try await client.call(.get, "/api/v1/workflows?limit=2&cursor=\(cursor)")
            #expect(second.json["workflows"]?.arrayValue?.map { $0["version"] } == ["1.0.0"])
            #expect(second.json["next_cursor"] == .some(.null))
            #expect(try await client.call(.get, "/api/workflows/list").json["workflows"]?.arrayValue?.count == 3)
            #expect(try await client.call(.get, "/api/v1/workflows?limit=0").status == .unprocessableContent)
        }
    }
}
