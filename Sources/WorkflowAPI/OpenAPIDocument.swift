import Foundation
import WorkflowPrimitive
import WorkflowRegistry

/// The OpenAPI 3.1 description of every route, served at `/openapi.json` (and rendered at `/api-docs`).
///
/// Kept honest by tests: `OpenAPITests` compares the router's routes with the document's operations, and
/// schemathesis (run by `.ci/run`) sends generated requests to a live server and checks every answer against it.
enum OpenAPIDocument {
    /// The document as JSON, built once.
    static let json: [UInt8] = Array(value.canonicalString().utf8)

    /// The document. The text is ours and fixed: a failure to read it is a bug `OpenAPITests` catches at once.
    static let value: JSONValue = {
        var limits = WorkflowLimits.default
        limits.maxDocumentNodes = 1_000_000
        return (try? WorkflowDocument.decode(Data(text.utf8), format: .yaml, maxDepth: 64, limits: limits)) ?? .null
    }()

    /// The YAML with its generated parts: the lifecycle actions, the schedule commands, the statuses.
    static var text: String {
        let lifecycle = WorkflowRegistry.LifecycleAction.allCases.map { action in
            let decides = action == .approve || action == .reject
            return """
                  /api/v1/workflows/{id}/\(action.rawValue):
                    post:
                      operationId: \(action.rawValue)Workflow
                      tags: [workflows]
                      summary: \(action.rawValue.capitalized) a definition version (\(decides ? "approval:decide" : "workflow:write"))
                      parameters: [{$ref: "#/components/parameters/workflow"}, {name: version, in: query, schema: {type: string}}]
                      requestBody: {content: {application/json: {schema: {type: object}}}}
                      responses:
                        "200": {description: The version after the action, content: {application/json: {schema: {$ref: "#/components/schemas/Workflow"}}}}
                        "4XX": {$ref: "#/components/responses/Problem"}
                        "503": {$ref: "#/components/responses/Problem"}
                """
        }.joined(separator: "\n")
        let scheduleActions = ["pause", "resume", "trigger", "backfill"].map { action in
            """
              /api/v1/schedules/{id}/\(action):
                post:
                  operationId: \(action)Schedule
                  tags: [schedules]
                  summary: \(action.capitalized) a schedule
                  parameters: [{$ref: "#/components/parameters/id"}]
                  requestBody: {\(action == "backfill" ? "required: true, " : "")content: {application/json: {schema: {type: object}}}}
                  responses:
                    "200": {$ref: "#/components/responses/Object"}
                    "201": {$ref: "#/components/responses/Object"}
                    "202": {$ref: "#/components/responses/Object"}
                    "4XX": {$ref: "#/components/responses/Problem"}
                    "503": {$ref: "#/components/responses/Problem"}
            """
        }.joined(separator: "\n")
        return yaml.replacingOccurrences(of: "{{LIFECYCLE}}", with: lifecycle)
            .replacingOccurrences(of: "{{SCHEDULE_ACTIONS}}", with: scheduleActions)
            .replacingOccurrences(of: "{{RUN_STATUSES}}", with: RunStatus.allCases.map(\.rawValue).joined(separator: ", "))
            .replacingOccurrences(of: "{{DEFINITION_STATUSES}}", with: DefinitionStatus.allCases.map(\.rawValue).joined(separator: ", "))
    }

    /// The whole YAML: the parts below in order (each part is a slice of one document, indented as it).
    static let yaml = [base, runPaths, adminPaths, eventPaths, aliasPaths, components].joined(separator: "\n")

    /// The document's head: info, security, tags, and the paths of operations and health.
    static let base = #"""
        openapi: 3.1.0
        info:
          title: Unified Workflow (uwf) API
          version: "1.0.0"
          description: |
            Durable workflow orchestration. Every request but the health probes, this document and /api-docs carries an
            API key or a bearer token (`Authorization: Bearer ...`, or `X-API-Key`). Errors are
            `application/problem+json` with a stable `code` and, for invalid input, JSON pointers. See docs/api.md.
          license:
            name: Proprietary
        servers:
          - url: /
        security:
          - bearer: []
          - apiKey: []
        tags:
          - name: workflows
          - name: executions
          - name: governance
          - name: identity
          - name: schedules
          - name: events
          - name: operations
          - name: original
            description: The original system's paths, kept as aliases.
        paths:
          /health:
            get:
              operationId: health
              tags: [operations]
              summary: Liveness (the process answers)
              security: []
              responses:
                "200": {$ref: "#/components/responses/Health"}
          /health/ready:
            get:
              operationId: ready
              tags: [operations]
              summary: Readiness (not shutting down, the database answers)
              security: []
              responses:
                "200": {$ref: "#/components/responses/Health"}
                "503": {$ref: "#/components/responses/Problem"}
          /openapi.json:
            get:
              operationId: openapi
              tags: [operations]
              summary: This document
              security: []
              responses:
                "200":
                  description: The OpenAPI document
                  content: {application/json: {schema: {type: object}}}
          /api-docs:
            get:
              operationId: apiDocs
              tags: [operations]
              summary: This document, readable in a browser
              security: []
              responses:
                "200":
                  description: An HTML page
                  content: {text/html: {schema: {type: string}}}
          /metrics:
            get:
              operationId: metrics
              tags: [operations]
              summary: Prometheus metrics of this node (metrics:read, default tenant)
              responses:
                "200":
                  description: The Prometheus text format
                  content: {text/plain: {schema: {type: string}}}
                "4XX": {$ref: "#/components/responses/Problem"}
        """#
}
