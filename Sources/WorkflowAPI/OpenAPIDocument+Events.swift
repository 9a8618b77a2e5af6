extension OpenAPIDocument {
    /// Paths of schedules, webhooks, live events and message templates.
    static let eventPaths = #"""
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
              parameters:
                - {$ref: "#/components/parameters/limit"}
                - {$ref: "#/components/parameters/cursor"}
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
        """#

    /// The original system's paths, kept as aliases.
    static let aliasPaths = #"""
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
        """#
}
