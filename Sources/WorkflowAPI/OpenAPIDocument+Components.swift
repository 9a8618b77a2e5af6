extension OpenAPIDocument {
    /// Shared parameters, responses and schemas.
    static let components = #"""
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
