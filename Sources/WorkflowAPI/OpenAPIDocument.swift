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

    static let yaml = #"""
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
          /api/v1/workflows:
            get:
              operationId: listWorkflows
              tags: [workflows]
              summary: List definitions (newest version first per name)
              parameters:
                - {name: name, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/WorkflowPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            post:
              operationId: registerWorkflow
              tags: [workflows]
              summary: Register a definition version (JSON or YAML)
              requestBody:
                required: true
                content:
                  application/json: {schema: {$ref: "#/components/schemas/WorkflowDocument"}}
                  application/yaml: {schema: {type: string}}
              responses:
                "200": {description: The same content was registered before, content: {application/json: {schema: {$ref: "#/components/schemas/Workflow"}}}}
                "201": {description: Registered, content: {application/json: {schema: {$ref: "#/components/schemas/Workflow"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/workflows/{id}:
            parameters: [{$ref: "#/components/parameters/workflow"}]
            get:
              operationId: getWorkflow
              tags: [workflows]
              summary: A definition by id, or by name (its highest active version, or `version`)
              parameters: [{name: version, in: query, schema: {type: string}}]
              responses:
                "200": {description: The definition, content: {application/json: {schema: {$ref: "#/components/schemas/Workflow"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            delete:
              operationId: deleteWorkflow
              tags: [workflows]
              summary: Erase a definition version no run refers to
              parameters: [{name: version, in: query, schema: {type: string}}]
              responses:
                "204": {description: Erased}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
        {{LIFECYCLE}}
          /api/v1/workflows/{id}/versions/{from}/diff/{to}:
            get:
              operationId: diffWorkflowVersions
              tags: [workflows]
              summary: What changed between two versions
              parameters:
                - {$ref: "#/components/parameters/workflow"}
                - {name: from, in: path, required: true, schema: {type: string}}
                - {name: to, in: path, required: true, schema: {type: string}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/workflows/{id}/history:
            get:
              operationId: listWorkflowRuns
              tags: [workflows]
              summary: The runs of a workflow
              parameters:
                - {$ref: "#/components/parameters/workflow"}
                - {$ref: "#/components/parameters/status"}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/RunPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/workflows/{id}/execute:
            post:
              operationId: executeWorkflow
              tags: [executions]
              summary: Start a run of this workflow
              parameters: [{$ref: "#/components/parameters/workflow"}, {$ref: "#/components/parameters/idempotencyKey"}]
              requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/ExecuteRequest"}}}}
              responses:
                "200": {$ref: "#/components/responses/Accepted"}
                "202": {$ref: "#/components/responses/Accepted"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/execute:
            post:
              operationId: execute
              tags: [executions]
              summary: Start a run (workflow_name or workflow_id in the body)
              parameters: [{$ref: "#/components/parameters/idempotencyKey"}]
              requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/ExecuteRequest"}}}}
              responses:
                "200": {$ref: "#/components/responses/Accepted"}
                "202": {$ref: "#/components/responses/Accepted"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions:
            get:
              operationId: listRuns
              tags: [executions]
              summary: List runs, newest first
              parameters:
                - {$ref: "#/components/parameters/status"}
                - {name: workflow_id, in: query, schema: {type: string}}
                - {name: parent_run_id, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/RunPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}:
            get:
              operationId: getRun
              tags: [executions]
              summary: A run with its steps
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "200": {$ref: "#/components/responses/RunDetail"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/history:
            get:
              operationId: getRunHistory
              tags: [executions]
              summary: A run's history, oldest first
              parameters:
                - {$ref: "#/components/parameters/runID"}
                - {name: after, in: query, schema: {type: integer, minimum: 0}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 10000}}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/EventPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/events:
            get:
              operationId: followRun
              tags: [events]
              summary: A run's events as they happen (Server-Sent Events; resumes from Last-Event-ID)
              parameters:
                - {$ref: "#/components/parameters/runID"}
                - {name: after, in: query, schema: {type: integer, minimum: 0}}
              responses:
                "200": {description: An event stream, content: {text/event-stream: {schema: {type: string}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/cancel:
            post:
              operationId: cancelRun
              tags: [executions]
              summary: Cancel a run (compensating what it did, when its definition says so)
              parameters: [{$ref: "#/components/parameters/runID"}]
              requestBody: {content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/StatusChange"}
                "202": {$ref: "#/components/responses/StatusChange"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/signals/{name}:
            post:
              operationId: signalRun
              tags: [executions]
              summary: Send a signal to a run
              parameters:
                - {$ref: "#/components/parameters/runID"}
                - {name: name, in: path, required: true, schema: {type: string, pattern: "^[A-Za-z0-9._-]{1,128}$"}}
              requestBody: {content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "202": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/retry:
            post:
              operationId: retryRun
              tags: [executions]
              summary: Retry a failed run in place, from its failed steps
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "200": {$ref: "#/components/responses/StatusChange"}
                "202": {$ref: "#/components/responses/StatusChange"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/rerun:
            post:
              operationId: rerunRun
              tags: [executions]
              summary: Start a new run with this run's input
              parameters: [{$ref: "#/components/parameters/runID"}]
              requestBody: {content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "202": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/approvals/{step_id}:
            post:
              operationId: decideApproval
              tags: [governance]
              summary: Approve or reject an approval step (approval:decide; never one's own run)
              parameters:
                - {$ref: "#/components/parameters/runID"}
                - {name: step_id, in: path, required: true, schema: {type: string}}
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/executions/{run_id}/children:
            get:
              operationId: listRunChildren
              tags: [executions]
              summary: The runs this run started (sub_workflow, foreach)
              parameters:
                - {$ref: "#/components/parameters/runID"}
                - {$ref: "#/components/parameters/status"}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/RunPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/approvals:
            get:
              operationId: listApprovals
              tags: [governance]
              summary: Approvals waiting for a decision (approval:decide)
              parameters:
                - {name: status, in: query, schema: {type: string}}
                - {name: mine, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/dead-letters:
            get:
              operationId: listDeadLetters
              tags: [operations]
              summary: Failed top-level runs nobody has dismissed
              parameters: [{$ref: "#/components/parameters/limit"}, {$ref: "#/components/parameters/cursor"}]
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/dead-letters/{run_id}:
            delete:
              operationId: dismissDeadLetter
              tags: [operations]
              summary: Dismiss a dead letter
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "204": {description: Dismissed}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/cluster/nodes:
            get:
              operationId: clusterNodes
              tags: [operations]
              summary: The cluster's nodes and leader (platform admins)
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/runs/purge:
            post:
              operationId: purgeRuns
              tags: [operations]
              summary: Purge the tenant's finished runs older than a number of days (admin)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/api-keys:
            get:
              operationId: listAPIKeys
              tags: [identity]
              summary: The tenant's API keys (admin; never their secrets)
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            post:
              operationId: createAPIKey
              tags: [identity]
              summary: Create an API key (its secret is shown once)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/api-keys/{id}:
            delete:
              operationId: revokeAPIKey
              tags: [identity]
              summary: Revoke an API key
              parameters: [{$ref: "#/components/parameters/id"}]
              responses:
                "204": {description: Revoked}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/tenants:
            get:
              operationId: listTenants
              tags: [identity]
              summary: Tenants (platform admins)
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            post:
              operationId: createTenant
              tags: [identity]
              summary: Create a tenant (platform admins)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/audit:
            get:
              operationId: listAudit
              tags: [governance]
              summary: The audit log (audit:read)
              parameters:
                - {name: tenant, in: query, schema: {type: string}}
                - {name: action, in: query, schema: {type: string}}
                - {name: actor, in: query, schema: {type: string}}
                - {name: target, in: query, schema: {type: string}}
                - {name: outcome, in: query, schema: {type: string}}
                - {name: since, in: query, schema: {type: string}}
                - {name: until, in: query, schema: {type: string}}
                - {name: order, in: query, schema: {type: string, enum: [newest, chain]}}
                - {name: after, in: query, schema: {type: integer, minimum: 0}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/audit/verify:
            get:
              operationId: verifyAudit
              tags: [governance]
              summary: Verify the audit log's hash chain
              parameters:
                - {name: tenant, in: query, schema: {type: string}}
                - {name: checkpoint_seq, in: query, schema: {type: integer, minimum: 1}}
                - {name: checkpoint_hash, in: query, schema: {type: string}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/tenant/settings:
            get:
              operationId: getTenantSettings
              tags: [governance]
              summary: The tenant's settings
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            put:
              operationId: putTenantSettings
              tags: [governance]
              summary: Replace the tenant's settings (admin)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/secrets:
            get:
              operationId: listSecrets
              tags: [governance]
              summary: The tenant's secrets (names and dates, never values)
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/secrets/{name}:
            parameters: [{name: name, in: path, required: true, schema: {type: string}}]
            put:
              operationId: putSecret
              tags: [governance]
              summary: Set a secret (sealed with the master key)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            delete:
              operationId: deleteSecret
              tags: [governance]
              summary: Delete a secret
              responses:
                "204": {description: Deleted}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/secrets/rotate-master-key:
            post:
              operationId: rotateMasterKey
              tags: [governance]
              summary: Re-seal every secret with the newest master key (platform admins)
              requestBody: {content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/schedules:
            get:
              operationId: listSchedules
              tags: [schedules]
              summary: The tenant's schedules
              parameters: [{$ref: "#/components/parameters/limit"}, {$ref: "#/components/parameters/cursor"}]
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            post:
              operationId: createSchedule
              tags: [schedules]
              summary: Create a schedule
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/schedules/preview:
            post:
              operationId: previewScheduleSpec
              tags: [schedules]
              summary: The next fire times of a schedule not saved
              parameters:
                - {$ref: "#/components/parameters/count"}
                - {name: after, in: query, schema: {type: string}}
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/schedules/{id}:
            parameters: [{$ref: "#/components/parameters/id"}]
            get:
              operationId: getSchedule
              tags: [schedules]
              summary: A schedule
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            put:
              operationId: updateSchedule
              tags: [schedules]
              summary: Replace a schedule's specification
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            delete:
              operationId: deleteSchedule
              tags: [schedules]
              summary: Delete a schedule
              responses:
                "204": {description: Deleted}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
        {{SCHEDULE_ACTIONS}}
          /api/v1/schedules/{id}/preview:
            get:
              operationId: previewSchedule
              tags: [schedules]
              summary: A schedule's next fire times
              parameters:
                - {$ref: "#/components/parameters/id"}
                - {$ref: "#/components/parameters/count"}
                - {name: after, in: query, schema: {type: string}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/schedules/{id}/runs:
            get:
              operationId: listScheduleRuns
              tags: [schedules]
              summary: The runs a schedule started, with their fire times
              parameters: [{$ref: "#/components/parameters/id"}, {$ref: "#/components/parameters/limit"}, {$ref: "#/components/parameters/cursor"}]
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhooks:
            get:
              operationId: listWebhooks
              tags: [events]
              summary: The tenant's webhook subscriptions (admin)
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            post:
              operationId: createWebhook
              tags: [events]
              summary: Subscribe a URL to events (Standard Webhooks)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhooks/{id}:
            parameters: [{$ref: "#/components/parameters/id"}]
            get:
              operationId: getWebhook
              tags: [events]
              summary: A subscription
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            put:
              operationId: updateWebhook
              tags: [events]
              summary: Change a subscription
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            delete:
              operationId: deleteWebhook
              tags: [events]
              summary: Delete a subscription
              responses:
                "204": {description: Deleted}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhooks/{id}/rotate-secret:
            post:
              operationId: rotateWebhookSecret
              tags: [events]
              summary: A new signing secret (the old one still signs for a while)
              parameters: [{$ref: "#/components/parameters/id"}]
              requestBody: {content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhooks/{id}/deliveries:
            get:
              operationId: listWebhookDeliveries
              tags: [events]
              summary: A subscription's deliveries
              parameters:
                - {$ref: "#/components/parameters/id"}
                - {name: status, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhook-deliveries:
            get:
              operationId: listDeliveries
              tags: [events]
              summary: The tenant's webhook deliveries
              parameters:
                - {name: status, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {$ref: "#/components/responses/Page"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhook-deliveries/{id}:
            get:
              operationId: getDelivery
              tags: [events]
              summary: A delivery with its attempts
              parameters: [{$ref: "#/components/parameters/id"}]
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/webhook-deliveries/redeliver:
            post:
              operationId: redeliver
              tags: [events]
              summary: Deliver again one or many deliveries
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "202": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/events:
            get:
              operationId: followEvents
              tags: [events]
              summary: The tenant's events as they happen (Server-Sent Events; resumes from Last-Event-ID)
              parameters:
                - {name: after, in: query, schema: {type: integer, minimum: 0}}
                - {$ref: "#/components/parameters/limit"}
                - {name: types, in: query, schema: {type: string}}
              responses:
                "200": {description: An event stream, content: {text/event-stream: {schema: {type: string}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/templates:
            get:
              operationId: listTemplates
              tags: [events]
              summary: Message templates (latest version of each)
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/v1/templates/{name}:
            parameters: [{name: name, in: path, required: true, schema: {type: string}}]
            get:
              operationId: getTemplate
              tags: [events]
              summary: A message template (latest, or `version`)
              parameters: [{name: version, in: query, schema: {type: integer, minimum: 1}}]
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
            put:
              operationId: putTemplate
              tags: [events]
              summary: Store a new version of a message template (Mustache)
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "200": {$ref: "#/components/responses/Object"}
                "201": {$ref: "#/components/responses/Object"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/run:
            post:
              operationId: originalRun
              tags: [original]
              summary: Alias of POST /api/v1/execute
              parameters: [{$ref: "#/components/parameters/idempotencyKey"}]
              requestBody: {required: true, content: {application/json: {schema: {$ref: "#/components/schemas/ExecuteRequest"}}}}
              responses:
                "200": {$ref: "#/components/responses/Accepted"}
                "202": {$ref: "#/components/responses/Accepted"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/run/{id}:
            post:
              operationId: originalRunWorkflow
              tags: [original]
              summary: Alias of POST /api/v1/workflows/{id}/execute
              parameters: [{$ref: "#/components/parameters/workflow"}, {$ref: "#/components/parameters/idempotencyKey"}]
              requestBody: {content: {application/json: {schema: {$ref: "#/components/schemas/ExecuteRequest"}}}}
              responses:
                "200": {$ref: "#/components/responses/Accepted"}
                "202": {$ref: "#/components/responses/Accepted"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/status/{run_id}:
            get:
              operationId: originalStatus
              tags: [original]
              summary: Alias of GET /api/v1/executions/{run_id}
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "200": {$ref: "#/components/responses/RunDetail"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/data/{run_id}:
            get:
              operationId: originalData
              tags: [original]
              summary: A run's input, output and step outputs
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "200": {description: The run's data, content: {application/json: {schema: {$ref: "#/components/schemas/RunOutputs"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/list:
            get:
              operationId: originalList
              tags: [original]
              summary: Alias of GET /api/v1/workflows
              parameters:
                - {name: name, in: query, schema: {type: string}}
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
              responses:
                "200": {description: A page, content: {application/json: {schema: {$ref: "#/components/schemas/WorkflowPage"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/cancel/{run_id}:
            post:
              operationId: originalCancel
              tags: [original]
              summary: Alias of POST /api/v1/executions/{run_id}/cancel
              parameters: [{$ref: "#/components/parameters/runID"}]
              responses:
                "200": {$ref: "#/components/responses/StatusChange"}
                "202": {$ref: "#/components/responses/StatusChange"}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
          /api/workflows/definition/{id}:
            get:
              operationId: originalDefinition
              tags: [original]
              summary: Alias of GET /api/v1/workflows/{id}
              parameters: [{$ref: "#/components/parameters/workflow"}]
              responses:
                "200": {description: The definition, content: {application/json: {schema: {$ref: "#/components/schemas/Workflow"}}}}
                "4XX": {$ref: "#/components/responses/Problem"}
                "503": {$ref: "#/components/responses/Problem"}
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer, description: "An API key (uwf_...) or a JWT from the identity provider"}
            apiKey: {type: apiKey, in: header, name: X-API-Key}
          parameters:
            limit: {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500}}
            cursor: {name: cursor, in: query, schema: {type: string}}
            count: {name: count, in: query, schema: {type: integer, minimum: 1, maximum: 1000}}
            status: {name: status, in: query, schema: {type: string}}
            id: {name: id, in: path, required: true, schema: {type: string}}
            runID: {name: run_id, in: path, required: true, schema: {type: string}}
            workflow:
              name: id
              in: path
              required: true
              description: A definition id, or a workflow name (percent-encoded)
              schema: {type: string}
            idempotencyKey:
              name: Idempotency-Key
              in: header
              description: Starts at most one run per key (per tenant); a repeat answers with that run
              schema: {type: string, minLength: 1, maxLength: 255}
          responses:
            Problem:
              description: An error (RFC 9457)
              content: {application/problem+json: {schema: {$ref: "#/components/schemas/Problem"}}}
            Health:
              description: The probe's answer
              content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
            Accepted:
              description: The run (202 when started, 200 when an Idempotency-Key found it)
              content: {application/json: {schema: {$ref: "#/components/schemas/RunAccepted"}}}
            StatusChange:
              description: The run's status after the command
              content: {application/json: {schema: {$ref: "#/components/schemas/RunStatusChange"}}}
            RunDetail:
              description: The run
              content: {application/json: {schema: {$ref: "#/components/schemas/RunDetail"}}}
            Object:
              description: A JSON object (fields in docs/api.md)
              content: {application/json: {schema: {type: object}}}
            Page:
              description: A page of a list (the items under the list's name, and next_cursor)
              content: {application/json: {schema: {$ref: "#/components/schemas/Page"}}}
          schemas:
            Time: {type: string, format: date-time}
            NullableTime: {type: [string, "null"], format: date-time}
            RunStatus: {type: string, enum: [{{RUN_STATUSES}}]}
            Problem:
              type: object
              required: [type, title, status, code]
              properties:
                type: {type: string}
                title: {type: string}
                status: {type: integer, minimum: 400, maximum: 599}
                detail: {type: string}
                code: {type: string}
                errors:
                  type: array
                  items:
                    type: object
                    required: [pointer, message]
                    properties: {pointer: {type: string}, message: {type: string}}
            Health:
              type: object
              required: [status]
              properties: {status: {type: string}}
            Page:
              type: object
              required: [next_cursor]
              properties: {next_cursor: {type: [string, "null"]}}
            WorkflowDocument:
              type: object
              required: [name, version, definition]
              properties:
                name: {type: string, minLength: 1, maxLength: 128}
                version: {type: string}
                description: {type: string}
                definition: {type: object}
            Workflow:
              type: object
              required: [id, name, version, definition, checksum, status, created_at]
              properties:
                id: {type: string}
                name: {type: string}
                version: {type: string}
                description: {type: [string, "null"]}
                definition: {type: object}
                checksum: {type: string}
                status: {type: string, enum: [{{DEFINITION_STATUSES}}]}
                created_at: {$ref: "#/components/schemas/Time"}
                created_by: {type: [string, "null"]}
                approvals: {type: array, items: {type: object}}
            WorkflowPage:
              type: object
              required: [workflows, next_cursor]
              properties:
                workflows: {type: array, items: {$ref: "#/components/schemas/Workflow"}}
                next_cursor: {type: [string, "null"]}
            ExecuteRequest:
              type: object
              properties:
                workflow_name: {type: string}
                workflow_id: {type: string}
                version: {type: string}
                input: {type: object}
                input_data: {type: object}
                priority: {type: integer, minimum: -1000, maximum: 1000}
            RunAccepted:
              type: object
              required: [run_id, status, workflow_id, workflow_name, workflow_version, created_at]
              properties:
                run_id: {type: string}
                status: {$ref: "#/components/schemas/RunStatus"}
                workflow_id: {type: string}
                workflow_name: {type: string}
                workflow_version: {type: string}
                created_at: {$ref: "#/components/schemas/Time"}
            RunStatusChange:
              type: object
              required: [run_id, status]
              properties:
                run_id: {type: string}
                status: {$ref: "#/components/schemas/RunStatus"}
            RunSummary:
              type: object
              required: [run_id, workflow_id, workflow_name, workflow_version, status, priority, created_at]
              properties:
                run_id: {type: string}
                workflow_id: {type: string}
                workflow_name: {type: string}
                workflow_version: {type: string}
                status: {$ref: "#/components/schemas/RunStatus"}
                error: {}
                parent_run_id: {type: [string, "null"]}
                parent_step_id: {type: string}
                item_index: {type: integer}
                priority: {type: integer}
                compensated: {type: boolean}
                dead_letter: {type: boolean}
                created_by: {type: string}
                created_at: {$ref: "#/components/schemas/Time"}
                started_at: {$ref: "#/components/schemas/NullableTime"}
                completed_at: {$ref: "#/components/schemas/NullableTime"}
            RunPage:
              type: object
              required: [executions, next_cursor]
              properties:
                executions: {type: array, items: {$ref: "#/components/schemas/RunSummary"}}
                next_cursor: {type: [string, "null"]}
            StepDetail:
              type: object
              required: [id, status, attempts]
              properties:
                id: {type: string}
                status: {type: string}
                attempts: {type: integer, minimum: 0}
                output: {}
                error: {}
                started_at: {$ref: "#/components/schemas/NullableTime"}
                completed_at: {$ref: "#/components/schemas/NullableTime"}
                state: {}
            RunDetail:
              allOf:
                - {$ref: "#/components/schemas/RunSummary"}
                - type: object
                  required: [input, updated_at, steps]
                  properties:
                    input: {}
                    output: {}
                    updated_at: {$ref: "#/components/schemas/Time"}
                    steps: {type: array, items: {$ref: "#/components/schemas/StepDetail"}}
            RunOutputs:
              type: object
              required: [run_id, status, input, steps]
              properties:
                run_id: {type: string}
                status: {$ref: "#/components/schemas/RunStatus"}
                input: {}
                output: {}
                steps: {type: object}
            RunEvent:
              type: object
              required: [seq, type, at, data]
              properties:
                seq: {type: integer, minimum: 1}
                type: {type: string}
                step_id: {type: [string, "null"]}
                at: {$ref: "#/components/schemas/Time"}
                data: {}
            EventPage:
              type: object
              required: [events, next_cursor]
              properties:
                events: {type: array, items: {$ref: "#/components/schemas/RunEvent"}}
                next_cursor: {type: [string, "null"]}
        """#
}
