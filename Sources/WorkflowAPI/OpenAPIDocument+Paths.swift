extension OpenAPIDocument {
    /// Paths of definitions, runs, approvals, dead letters and the cluster.
    static let runPaths = #"""
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
        """#

    /// Paths of retention, keys, tenants, audit, tenant settings and secrets.
    static let adminPaths = #"""
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
              parameters:
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
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
              parameters:
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
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
              parameters:
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
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
        """#
}
