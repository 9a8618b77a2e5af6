/// The numbered, append-only migrations of the PostgreSQL driver.
enum PostgresSchema {
    static let migrations: [(version: Int, name: String, sql: [String])] = [
        (
            1, "core",
            [
                """
                CREATE TABLE workflow_definitions (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    version TEXT NOT NULL,
                    status TEXT NOT NULL DEFAULT 'active',
                    description TEXT,
                    definition JSONB NOT NULL,
                    checksum TEXT NOT NULL,
                    created_by TEXT,
                    created_at TIMESTAMPTZ NOT NULL,
                    UNIQUE (tenant_id, name, version)
                )
                """,
                "CREATE INDEX workflow_definitions_list ON workflow_definitions (tenant_id, id)",
                """
                CREATE TABLE runs (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    definition_id TEXT NOT NULL REFERENCES workflow_definitions (id),
                    workflow_name TEXT NOT NULL,
                    workflow_version TEXT NOT NULL,
                    status TEXT NOT NULL,
                    input JSONB NOT NULL,
                    output JSONB,
                    error JSONB,
                    idempotency_key TEXT,
                    parent_run_id TEXT,
                    priority INTEGER NOT NULL DEFAULT 0,
                    created_at TIMESTAMPTZ NOT NULL,
                    started_at TIMESTAMPTZ,
                    completed_at TIMESTAMPTZ,
                    updated_at TIMESTAMPTZ NOT NULL,
                    next_event_seq INTEGER NOT NULL DEFAULT 1
                )
                """,
                "CREATE INDEX runs_list ON runs (tenant_id, id)",
                "CREATE INDEX runs_by_status ON runs (tenant_id, status, id)",
                "CREATE INDEX runs_by_definition ON runs (tenant_id, definition_id, id)",
                "CREATE UNIQUE INDEX runs_idempotency ON runs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL",
                """
                CREATE TABLE step_runs (
                    run_id TEXT NOT NULL REFERENCES runs (id),
                    step_id TEXT NOT NULL,
                    tenant_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempt INTEGER NOT NULL,
                    input JSONB,
                    output JSONB,
                    error JSONB,
                    state JSONB,
                    started_at TIMESTAMPTZ,
                    completed_at TIMESTAMPTZ,
                    updated_at TIMESTAMPTZ NOT NULL,
                    PRIMARY KEY (run_id, step_id)
                )
                """,
                """
                CREATE TABLE run_events (
                    run_id TEXT NOT NULL REFERENCES runs (id),
                    seq INTEGER NOT NULL,
                    tenant_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    step_id TEXT,
                    data JSONB NOT NULL,
                    at TIMESTAMPTZ NOT NULL,
                    PRIMARY KEY (run_id, seq)
                )
                """,
                """
                CREATE TABLE tasks (
                    id BIGSERIAL PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    run_id TEXT NOT NULL REFERENCES runs (id),
                    step_id TEXT,
                    kind TEXT NOT NULL,
                    available_at TIMESTAMPTZ NOT NULL,
                    priority INTEGER NOT NULL DEFAULT 0,
                    lease_owner TEXT,
                    lease_expires_at TIMESTAMPTZ,
                    lease_token BIGINT NOT NULL DEFAULT 0,
                    created_at TIMESTAMPTZ NOT NULL
                )
                """,
                "CREATE INDEX tasks_available ON tasks (priority DESC, available_at, id) WHERE lease_owner IS NULL",
                "CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE lease_owner IS NOT NULL",
                "CREATE INDEX tasks_by_owner ON tasks (lease_owner) WHERE lease_owner IS NOT NULL",
                "CREATE INDEX tasks_by_run ON tasks (run_id)",
            ]
        ),
        (
            2, "cluster",
            [
                "CREATE TABLE nodes (id TEXT PRIMARY KEY, host TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, heartbeat_at TIMESTAMPTZ NOT NULL)",
                "CREATE TABLE leaders (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at TIMESTAMPTZ NOT NULL)",
            ]
        ),
        (
            3, "language",
            [
                """
                ALTER TABLE runs ADD COLUMN request_hash TEXT, ADD COLUMN parent_step_id TEXT, ADD COLUMN item_index INTEGER,
                    ADD COLUMN body_path TEXT, ADD COLUMN compensated BOOLEAN, ADD COLUMN signals JSONB,
                    ADD COLUMN dead_letter BOOLEAN NOT NULL DEFAULT FALSE
                """,
                "CREATE INDEX runs_children ON runs (parent_run_id, parent_step_id, item_index) WHERE parent_run_id IS NOT NULL",
                "CREATE INDEX runs_dead_letters ON runs (tenant_id, id) WHERE dead_letter",
                "CREATE INDEX runs_idempotency_age ON runs (created_at) WHERE idempotency_key IS NOT NULL",
            ]
        ),
        (
            4, "hardening",
            [
                "ALTER TABLE runs ADD COLUMN root_run_id TEXT, ADD COLUMN key_generations JSONB",
                "CREATE INDEX runs_tree ON runs (root_run_id, status) WHERE root_run_id IS NOT NULL",
            ]
        ),
        (
            5, "fair_queue",
            [
                // The queue is taken in fair_at order (RunMutation.queueTimes), not in available_at order.
                "ALTER TABLE tasks ADD COLUMN fair_at TIMESTAMPTZ",
                "UPDATE tasks SET fair_at = available_at",
                "ALTER TABLE tasks ALTER COLUMN fair_at SET NOT NULL",
                "DROP INDEX tasks_available",
                "CREATE INDEX tasks_ready ON tasks (priority DESC, fair_at, id) WHERE lease_owner IS NULL",
            ]
        ),
        (
            6, "identity",
            [
                // Tenants and API keys (only a hash of each key is kept); who started each run.
                """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL,
                    created_by TEXT
                )
                """,
                "INSERT INTO tenants (id, name, created_at) VALUES ('default', 'default', 'epoch')",
                """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    prefix TEXT NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    roles TEXT[] NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL,
                    created_by TEXT,
                    expires_at TIMESTAMPTZ,
                    revoked_at TIMESTAMPTZ,
                    last_used_at TIMESTAMPTZ,
                    rate_limit INTEGER,
                    workflows TEXT[]
                )
                """,
                "CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id)",
                "ALTER TABLE runs ADD COLUMN created_by TEXT",
            ]
        ),
        (
            7, "governance",
            [
                // The audit log (one hash chain per tenant, its head kept beside it; details as text, hashed as
                // written), the lifecycle of definition versions (their approvals), tenant settings and secrets.
                """
                CREATE TABLE audit_log (
                    tenant_id TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    at BIGINT NOT NULL,
                    actor TEXT,
                    action TEXT NOT NULL,
                    target TEXT,
                    outcome TEXT NOT NULL,
                    source TEXT,
                    request_id TEXT,
                    details TEXT NOT NULL,
                    prev_hash TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    PRIMARY KEY (tenant_id, seq)
                )
                """,
                "CREATE TABLE audit_heads (tenant_id TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
                "ALTER TABLE workflow_definitions ADD COLUMN approvals TEXT",
                "ALTER TABLE tenants ADD COLUMN settings TEXT",
                """
                CREATE TABLE secrets (
                    tenant_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    key_id TEXT NOT NULL,
                    ciphertext TEXT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL,
                    updated_by TEXT,
                    PRIMARY KEY (tenant_id, name)
                )
                """,
                "CREATE INDEX step_runs_approvals ON step_runs (tenant_id, run_id, step_id) WHERE status = 'WAITING' AND state ? 'approval'",
            ]
        ),
        (
            8, "schedules",
            [
                // Schedules (their spec and firing state as JSON) and the log of the runs they started, whose key makes
                // a fire time start at most one run.
                """
                CREATE TABLE schedules (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    state TEXT NOT NULL,
                    paused BOOLEAN NOT NULL,
                    note TEXT,
                    next_wake_at TIMESTAMPTZ,
                    revision BIGINT NOT NULL,
                    created_at TIMESTAMPTZ NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL,
                    created_by TEXT,
                    PRIMARY KEY (tenant_id, id)
                )
                """,
                "CREATE INDEX schedules_due ON schedules (next_wake_at) WHERE NOT paused AND next_wake_at IS NOT NULL",
                """
                CREATE TABLE schedule_fires (
                    tenant_id TEXT NOT NULL,
                    schedule_id TEXT NOT NULL,
                    scheduled_at BIGINT NOT NULL,
                    run_id TEXT NOT NULL,
                    fired_at TIMESTAMPTZ NOT NULL,
                    PRIMARY KEY (tenant_id, schedule_id, scheduled_at)
                )
                """,
            ]
        ),
        (
            9, "events",
            [
                // The outbox (events written with the changes they report; numbered in the tenant's stream once
                // dispatched), webhook subscriptions, their deliveries and each delivery's attempts.
                """
                CREATE TABLE outbox (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    at TIMESTAMPTZ NOT NULL,
                    correlation_id TEXT,
                    payload TEXT NOT NULL,
                    seq BIGINT
                )
                """,
                "CREATE INDEX outbox_pending ON outbox (id) WHERE seq IS NULL",
                "CREATE INDEX outbox_stream ON outbox (tenant_id, seq) WHERE seq IS NOT NULL",
                // The stream's last number: one row, so numbering a batch never scans the outbox for its maximum.
                "CREATE TABLE outbox_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
                "INSERT INTO outbox_head (id, seq) VALUES (1, 0)",
                """
                CREATE TABLE webhook_subscriptions (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    url TEXT NOT NULL,
                    event_types TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    key_id TEXT,
                    previous_secret TEXT,
                    previous_secret_expires_at TIMESTAMPTZ,
                    status TEXT NOT NULL,
                    disabled_reason TEXT,
                    description TEXT,
                    created_at TIMESTAMPTZ NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL,
                    created_by TEXT,
                    PRIMARY KEY (tenant_id, id)
                )
                """,
                """
                CREATE TABLE webhook_deliveries (
                    id TEXT PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    subscription_id TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    body TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt_at TIMESTAMPTZ,
                    last_status_code INTEGER,
                    last_error TEXT,
                    created_at TIMESTAMPTZ NOT NULL,
                    updated_at TIMESTAMPTZ NOT NULL,
                    UNIQUE (tenant_id, subscription_id, event_id)
                )
                """,
                "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
                "CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, id)",
                """
                CREATE TABLE webhook_attempts (
                    delivery_id TEXT NOT NULL,
                    n INTEGER NOT NULL,
                    at TIMESTAMPTZ NOT NULL,
                    status_code INTEGER,
                    latency_ms INTEGER NOT NULL,
                    error TEXT,
                    response_excerpt TEXT,
                    PRIMARY KEY (delivery_id, n)
                )
                """,
                """
                CREATE TABLE message_templates (
                    tenant_id TEXT NOT NULL,
                    name TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    subject TEXT,
                    body TEXT NOT NULL,
                    description TEXT,
                    created_at TIMESTAMPTZ NOT NULL,
                    created_by TEXT,
                    PRIMARY KEY (tenant_id, name, version)
                )
                """,
            ]
        ),
        (10, "trace_parent", ["ALTER TABLE runs ADD COLUMN trace_parent TEXT"]),
    ]
}
