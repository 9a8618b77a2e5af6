import Prometheus
import Synchronization

/// What one node measures, in the Prometheus text format at `/metrics` (docs/operations.md lists every series).
///
/// Each node owns its registry rather than bootstrapping the process-wide `MetricsSystem`: a test process runs many
/// nodes, and each must report only its own work. Names follow Prometheus conventions (base units in the name,
/// `_total` on counters), and every label has a bounded set of values: never a run id, and workflow names only up to
/// `maxWorkflowLabels` distinct ones (later ones are counted under `workflow="_other"`).
public final class WorkflowMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// Workflow names kept as label values; beyond them, `_other`.
    public static let maxWorkflowLabels = 200
    private let workflowNames = Mutex<Set<String>>([])
    /// Gauges read when scraped (queue depth, leadership): each sets its gauges from the current state.
    private let collectors = Mutex<[@Sendable () async -> Void]>([])

    static let httpBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    static let stepBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .seconds(1),
        .seconds(5), .seconds(15), .seconds(60), .seconds(300),
    ]
    static let runBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1), .seconds(5), .seconds(30), .seconds(120),
        .seconds(600), .seconds(3600), .seconds(21_600), .seconds(86_400),
    ]
    static let lagBuckets: [Duration] = [
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
        .seconds(30), .seconds(120),
    ]

    public init(version: String) {
        registry.makeGauge(name: "uwf_build_info", labels: [("version", version)], help: "Always 1; the build's version as a label.")
            .set(1.0)
        // Series that an alert or a dashboard reads exist from the start (at zero), so `rate()` sees their first
        // increase.
        _ = registry.makeCounter(name: "uwf_lease_takeovers_total", help: "Tasks claimed after another node's lease on them ran out.")
        for operation in ["claiming", "committing", "starting", "heartbeat", "reading"] { databaseErrors(operation, count: 0) }
        _ = fires()
        _ = lagHistogram()
        for outcome in ["succeeded", "retrying", "failed"] { _ = webhookAttempts(outcome) }
        _ = webhookDurations()
        queue(ready: 0, oldestAge: nil)
        leader(false)
        liveStreams(0)
    }

    // MARK: HTTP

    /// One answered request. `route` is the matched route's template (`/api/v1/runs/{run_id}`), or `unmatched`.
    public func httpRequest(method: String, route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            name: "uwf_http_requests_total",
            labels: [("method", method), ("route", route), ("status", String(status))],
            help: "HTTP requests answered, by method, route template and status code."
        ).increment()
        registry.makeDurationHistogram(
            name: "uwf_http_request_duration_seconds",
            labels: [("method", method), ("route", route)],
            buckets: Self.httpBuckets,
            help: "Time to answer an HTTP request (until its headers are sent), by method and route template."
        ).record(duration)
    }

    // MARK: runs and steps

    /// A workflow's name as a label value: the first `maxWorkflowLabels` names seen, then `_other`.
    func workflowLabel(_ name: String) -> String {
        workflowNames.withLock { names in
            if names.contains(name) { return name }
            guard names.count < Self.maxWorkflowLabels else { return "_other" }
            names.insert(name)
            return name
        }
    }

    public func runStarted(workflow: String) {
        registry.makeCounter(
            name: "uwf_runs_started_total",
            labels: [("workflow", workflowLabel(workflow))],
            help: "Runs that began executing (their first step claimed), by workflow."
        ).increment()
    }

    /// A run ended: `status` is completed, failed, cancelled or timed_out.
    public func runFinished(workflow: String, status: String, duration: Duration?) {
        let label = workflowLabel(workflow)
        registry.makeCounter(
            name: "uwf_runs_finished_total",
            labels: [("workflow", label), ("status", status)],
            help: "Runs that ended, by workflow and final status (completed, failed, cancelled, timed_out)."
        ).increment()
        guard let duration else { return }
        registry.makeDurationHistogram(
            name: "uwf_run_duration_seconds",
            labels: [("workflow", label), ("status", status)],
            buckets: Self.runBuckets,
            help: "Time from a run's start to its end, by workflow and final status."
        ).record(duration)
    }

    /// One step attempt executed on this node: `outcome` is succeeded, failed, timed_out, suspended or child_started.
    public func stepAttempt(type: String, outcome: String, duration: Duration) {
        registry.makeCounter(
            name: "uwf_step_attempts_total",
            labels: [("type", type), ("outcome", outcome)],
            help: "Step attempts executed, by step type and outcome (succeeded, failed, timed_out, suspended, child_started)."
        ).increment()
        registry.makeDurationHistogram(
            name: "uwf_step_attempt_duration_seconds",
            labels: [("type", type), ("outcome", outcome)],
            buckets: Self.stepBuckets,
            help: "Time a step attempt took to execute, by step type and outcome."
        ).record(duration)
    }

    public func leaseTakeovers(_ count: Int) {
        guard count > 0 else { return }
        registry.makeCounter(name: "uwf_lease_takeovers_total", help: "Tasks claimed after another node's lease on them ran out.")
            .increment(by: Int64(count))
    }

    /// A database call of the engine failed; `operation` is one of a fixed few (claiming, committing, starting, ...).
    public func databaseErrors(_ operation: String, count: Int = 1) {
        registry.makeCounter(
            name: "uwf_database_errors_total",
            labels: [("operation", operation)],
            help: "Failed database calls of the engine's loops, by what they were doing."
        ).increment(by: Int64(count))
    }

    // MARK: schedules and webhooks

    /// A schedule fired: `lag` is how long after its (jittered) time the run was written.
    public func scheduleFired(lag: Duration) {
        fires().increment()
        lagHistogram().record(max(lag, .zero))
    }

    /// One webhook attempt: `outcome` is succeeded, retrying or failed (the last attempt, 410, or a disabled
    /// subscription).
    public func webhookAttempt(outcome: String, duration: Duration) {
        webhookAttempts(outcome).increment()
        webhookDurations().record(duration)
    }

    private func fires() -> Counter {
        registry.makeCounter(name: "uwf_schedule_fires_total", help: "Runs started by schedules.")
    }

    private func lagHistogram() -> DurationHistogram {
        registry.makeDurationHistogram(
            name: "uwf_schedule_fire_lag_seconds",
            buckets: Self.lagBuckets,
            help: "How long after its scheduled time a schedule's run was written."
        )
    }

    private func webhookAttempts(_ outcome: String) -> Counter {
        registry.makeCounter(
            name: "uwf_webhook_attempts_total",
            labels: [("outcome", outcome)],
            help: "Webhook delivery attempts, by outcome (succeeded, retrying, failed: the last attempt, 410, or a disabled subscription)."
        )
    }

    private func webhookDurations() -> DurationHistogram {
        registry.makeDurationHistogram(
            name: "uwf_webhook_attempt_duration_seconds",
            buckets: Self.httpBuckets,
            help: "Time a webhook endpoint took to answer an attempt."
        )
    }

    // MARK: gauges (set at scrape time)

    /// The shared queue as this node last read it (at a scrape): ready tasks nobody holds, and how long the oldest of
    /// them has waited since it fell due.
    public func queue(ready: Int, oldestAge: Duration?) {
        registry.makeGauge(name: "uwf_ready_tasks", help: "Tasks due and not leased by any node (counted up to 100000).")
            .set(Double(ready))
        registry.makeGauge(
            name: "uwf_oldest_ready_task_age_seconds",
            help: "How long the oldest due, unleased task has waited since it fell due (0 when none waits)."
        ).set(Self.seconds(max(oldestAge ?? .zero, .zero)))
    }

    /// This node's work in progress: step attempts executing, and how many it may execute at once.
    public func executions(active: Int, capacity: Int) {
        registry.makeGauge(name: "uwf_step_executions_active", help: "Step attempts executing on this node now.").set(Double(active))
        registry.makeGauge(name: "uwf_step_executions_capacity", help: "Step attempts this node executes at once at most.")
            .set(Double(capacity))
    }

    /// Whether this node is the cluster's leader (it fires schedules, delivers webhooks, purges).
    public func leader(_ isLeader: Bool) {
        registry.makeGauge(name: "uwf_leader", help: "1 while this node is the leader (schedules, webhooks, retention), else 0.")
            .set(isLeader ? 1.0 : 0.0)
    }

    /// The database connection pool: its size, and connections in use when the driver tells.
    public func databasePool(size: Int, inUse: Int?) {
        registry.makeGauge(name: "uwf_database_pool_connections", help: "Connections the database pool may open.").set(Double(size))
        if let inUse {
            registry.makeGauge(name: "uwf_database_pool_connections_in_use", help: "Pool connections running a query now.")
                .set(Double(inUse))
        }
    }

    /// Live streams (Server-Sent Events) open on this node.
    public func liveStreams(_ count: Int) {
        registry.makeGauge(name: "uwf_live_streams", help: "Live event streams open on this node.").set(Double(count))
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// Registers a function that sets gauges just before each scrape.
    public func onScrape(_ collect: @escaping @Sendable () async -> Void) {
        collectors.withLock { $0.append(collect) }
    }

    /// The text format, after updating the gauges read at scrape time.
    public func render() async -> [UInt8] {
        for collect in collectors.withLock({ $0 }) { await collect() }
        return registry.emitToBuffer()
    }
}
