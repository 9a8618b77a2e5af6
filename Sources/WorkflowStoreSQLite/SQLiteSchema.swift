import GRDB

/// The numbered, append-only migrations of the SQLite driver.
enum SQLiteSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("001_core") { db in
            try db.execute(
                sql: """
                    CREATE TABLE workflow_definitions (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        version TEXT NOT NULL,
                        status TEXT NOT NULL DEFAULT 'active',
                        description TEXT,
                        definition TEXT NOT NULL,
                        checksum TEXT NOT NULL,
                        created_by TEXT,
                        created_at INTEGER NOT NULL,
                        UNIQUE (tenant_id, name, version)
                    );
                    CREATE INDEX workflow_definitions_list ON workflow_definitions (tenant_id, id);

                    CREATE TABLE runs (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        definition_id TEXT NOT NULL REFERENCES workflow_definitions (id),
                        workflow_name TEXT NOT NULL,
                        workflow_version TEXT NOT NULL,
                        status TEXT NOT NULL,
                        input TEXT NOT NULL,
                        output TEXT,
                        error TEXT,
                        idempotency_key TEXT,
                        parent_run_id TEXT,
                        priority INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL,
                        started_at INTEGER,
                        completed_at INTEGER,
                        updated_at INTEGER NOT NULL,
                        next_event_seq INTEGER NOT NULL DEFAULT 1
                    );
                    CREATE INDEX runs_list ON runs (tenant_id, id);
                    CREATE INDEX runs_by_status ON runs (tenant_id, status, id);
                    CREATE INDEX runs_by_definition ON runs (tenant_id, definition_id, id);
                    CREATE UNIQUE INDEX runs_idempotency ON runs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

                    CREATE TABLE step_runs (
                        run_id TEXT NOT NULL REFERENCES runs (id),
                        step_id TEXT NOT NULL,
                        tenant_id TEXT NOT NULL,
                        status TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        input TEXT,
                        output TEXT,
                        error TEXT,
                        state TEXT,
                        started_at INTEGER,
                        completed_at INTEGER,
                        updated_at INTEGER NOT NULL,
                        PRIMARY KEY (run_id, step_id)
                    ) WITHOUT ROWID;

                    CREATE TABLE run_events (
                        run_id TEXT NOT NULL REFERENCES runs (id),
                        seq INTEGER NOT NULL,
                        tenant_id TEXT NOT NULL,
                        type TEXT NOT NULL,
                        step_id TEXT,
                        data TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        PRIMARY KEY (run_id, seq)
                    ) WITHOUT ROWID;

                    CREATE TABLE tasks (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant_id TEXT NOT NULL,
                        run_id TEXT NOT NULL REFERENCES runs (id),
                        step_id TEXT,
                        kind TEXT NOT NULL,
                        available_at INTEGER NOT NULL,
                        priority INTEGER NOT NULL DEFAULT 0,
                        lease_owner TEXT,
                        lease_expires_at INTEGER,
                        lease_token INTEGER NOT NULL DEFAULT 0,
                        created_at INTEGER NOT NULL
                    );
                    CREATE INDEX tasks_available ON tasks (priority DESC, available_at, id) WHERE lease_owner IS NULL;
                    CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE lease_owner IS NOT NULL;
                    CREATE INDEX tasks_by_owner ON tasks (lease_owner) WHERE lease_owner IS NOT NULL;
                    CREATE INDEX tasks_by_run ON tasks (run_id);
                    """
            )
        }
        migrator.registerMigration("002_cluster") { db in
            try db.execute(
                sql: """
                    CREATE TABLE nodes (
                        id TEXT PRIMARY KEY,
                        host TEXT NOT NULL,
                        started_at INTEGER NOT NULL,
                        heartbeat_at INTEGER NOT NULL
                    );
                    CREATE TABLE leaders (
                        name TEXT PRIMARY KEY,
                        owner TEXT NOT NULL,
                        expires_at INTEGER NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("003_language") { db in
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN request_hash TEXT;
                    ALTER TABLE runs ADD COLUMN parent_step_id TEXT;
                    ALTER TABLE runs ADD COLUMN item_index INTEGER;
                    ALTER TABLE runs ADD COLUMN body_path TEXT;
                    ALTER TABLE runs ADD COLUMN compensated INTEGER;
                    ALTER TABLE runs ADD COLUMN signals TEXT;
                    ALTER TABLE runs ADD COLUMN dead_letter INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX runs_children ON runs (parent_run_id, parent_step_id, item_index) WHERE parent_run_id IS NOT NULL;
                    CREATE INDEX runs_dead_letters ON runs (tenant_id, completed_at, id) WHERE dead_letter = 1;
                    CREATE INDEX runs_idempotency_age ON runs (created_at) WHERE idempotency_key IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("004_hardening") { db in
            try db.execute(
                sql: """
                    ALTER TABLE runs ADD COLUMN root_run_id TEXT;
                    ALTER TABLE runs ADD COLUMN key_generations TEXT;
                    CREATE INDEX runs_tree ON runs (root_run_id, status) WHERE root_run_id IS NOT NULL;
                    """
            )
        }
        migrator.registerMigration("005_fair_queue") { db in
            // The queue is taken in fair_at order (RunMutation.queueTimes), not in available_at order.
            try db.execute(
                sql: """
                    ALTER TABLE tasks ADD COLUMN fair_at INTEGER NOT NULL DEFAULT 0;
                    UPDATE tasks SET fair_at = available_at;
                    DROP INDEX tasks_available;
                    CREATE INDEX tasks_ready ON tasks (priority DESC, fair_at, id) WHERE lease_owner IS NULL;
                    """
            )
        }
        migrator.registerMigration("006_identity") { db in
            // Tenants and API keys (only a hash of each key is kept); who started each run.
            try db.execute(
                sql: """
                    CREATE TABLE tenants (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        created_by TEXT
                    );
                    INSERT INTO tenants (id, name, created_at) VALUES ('default', 'default', 0);
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        prefix TEXT NOT NULL,
                        hash TEXT NOT NULL UNIQUE,
                        roles TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        created_by TEXT,
                        expires_at INTEGER,
                        revoked_at INTEGER,
                        last_used_at INTEGER,
                        rate_limit INTEGER,
                        workflows TEXT
                    );
                    CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, id);
                    ALTER TABLE runs ADD COLUMN created_by TEXT;
                    """
            )
        }
        migrator.registerMigration("007_governance") { db in
            // The audit log (one hash chain per tenant, its head kept beside it), the lifecycle of definition versions
            // (their approvals), tenant settings (policies) and encrypted secrets.
            try db.execute(
                sql: """
                    CREATE TABLE audit_log (
                        tenant_id TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        at INTEGER NOT NULL,
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
                    ) WITHOUT ROWID;
                    CREATE TABLE audit_heads (
                        tenant_id TEXT PRIMARY KEY,
                        seq INTEGER NOT NULL,
                        hash TEXT NOT NULL
                    );
                    ALTER TABLE workflow_definitions ADD COLUMN approvals TEXT;
                    ALTER TABLE tenants ADD COLUMN settings TEXT;
                    CREATE TABLE secrets (
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        key_id TEXT NOT NULL,
                        ciphertext TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        updated_by TEXT,
                        PRIMARY KEY (tenant_id, name)
                    ) WITHOUT ROWID;
                    CREATE INDEX step_runs_approvals ON step_runs (tenant_id, run_id, step_id)
                        WHERE status = 'WAITING' AND state LIKE '{"approval":%';
                    """
            )
        }
        migrator.registerMigration("008_schedules") { db in
            // Schedules (their spec and firing state as JSON) and the log of the runs they started, whose key makes a
            // fire time start at most one run.
            try db.execute(
                sql: """
                    CREATE TABLE schedules (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        state TEXT NOT NULL,
                        paused INTEGER NOT NULL,
                        note TEXT,
                        next_wake_at INTEGER,
                        revision INTEGER NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        created_by TEXT,
                        PRIMARY KEY (tenant_id, id)
                    ) WITHOUT ROWID;
                    CREATE INDEX schedules_due ON schedules (next_wake_at) WHERE paused = 0 AND next_wake_at IS NOT NULL;
                    CREATE TABLE schedule_fires (
                        tenant_id TEXT NOT NULL,
                        schedule_id TEXT NOT NULL,
                        scheduled_at INTEGER NOT NULL,
                        run_id TEXT NOT NULL,
                        fired_at INTEGER NOT NULL,
                        PRIMARY KEY (tenant_id, schedule_id, scheduled_at)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("009_events") { db in
            // The outbox (events written with the changes they report; numbered in the tenant's stream once
            // dispatched), webhook subscriptions, their deliveries and each delivery's attempts.
            try db.execute(
                sql: """
                    CREATE TABLE outbox (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        type TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        correlation_id TEXT,
                        payload TEXT NOT NULL,
                        seq INTEGER
                    ) WITHOUT ROWID;
                    CREATE INDEX outbox_pending ON outbox (id) WHERE seq IS NULL;
                    CREATE INDEX outbox_stream ON outbox (tenant_id, seq) WHERE seq IS NOT NULL;
                    CREATE TABLE outbox_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
                    INSERT INTO outbox_head (id, seq) VALUES (1, 0);
                    CREATE TABLE webhook_subscriptions (
                        tenant_id TEXT NOT NULL,
                        id TEXT NOT NULL,
                        url TEXT NOT NULL,
                        event_types TEXT NOT NULL,
                        secret TEXT NOT NULL,
                        key_id TEXT,
                        previous_secret TEXT,
                        previous_secret_expires_at INTEGER,
                        status TEXT NOT NULL,
                        disabled_reason TEXT,
                        description TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        created_by TEXT,
                        PRIMARY KEY (tenant_id, id)
                    ) WITHOUT ROWID;
                    CREATE TABLE webhook_deliveries (
                        id TEXT PRIMARY KEY,
                        tenant_id TEXT NOT NULL,
                        subscription_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        event_type TEXT NOT NULL,
                        body TEXT NOT NULL,
                        status TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        next_attempt_at INTEGER,
                        last_status_code INTEGER,
                        last_error TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        UNIQUE (tenant_id, subscription_id, event_id)
                    ) WITHOUT ROWID;
                    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
                    CREATE INDEX webhook_deliveries_list ON webhook_deliveries (tenant_id, id);
                    CREATE TABLE webhook_attempts (
                        delivery_id TEXT NOT NULL,
                        n INTEGER NOT NULL,
                        at INTEGER NOT NULL,
                        status_code INTEGER,
                        latency_ms INTEGER NOT NULL,
                        error TEXT,
                        response_excerpt TEXT,
                        PRIMARY KEY (delivery_id, n)
                    ) WITHOUT ROWID;
                    CREATE TABLE message_templates (
                        tenant_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        version INTEGER NOT NULL,
                        subject TEXT,
                        body TEXT NOT NULL,
                        description TEXT,
                        created_at INTEGER NOT NULL,
                        created_by TEXT,
                        PRIMARY KEY (tenant_id, name, version)
                    ) WITHOUT ROWID;
                    """
            )
        }
        migrator.registerMigration("010_trace_parent") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN trace_parent TEXT")
        }
        return migrator
    }
}
