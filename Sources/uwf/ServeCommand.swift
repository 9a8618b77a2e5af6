import ArgumentParser
import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOSSL
import Prometheus
import ServiceLifecycle
import WorkflowAPI
import WorkflowEngine
import WorkflowIdentity
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowStorePostgres
import WorkflowStoreSQLite

#if OTel
import OTel
#endif

/// `uwf serve`: the API, the engine and the database in one process.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the server: REST API and engine, on embedded SQLite or on a shared PostgreSQL (a cluster)."
    )

    @Option(
        help:
            "A YAML configuration file (default $UWF_CONFIG): sections api, database, executor, limits, auth, audit, schedules, webhooks, retention, smtp, logging, metrics. Flags override the environment (UWF_*), which overrides the file."
    )
    var config: String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8080
    @Option(name: .customLong("data-dir"), help: "Directory of the embedded SQLite database.") var dataDirectory = "./data"
    @Option(
        help:
            "PostgreSQL URL (postgres://user:pass@host:5432/db?sslmode=disable&schema=uwf&pool_size=20); default $DATABASE_URL. Without it: embedded SQLite."
    )
    var database: String?
    @Option(help: "SQLite commit durability: full (survives power loss) or normal (survives a process crash).")
    var sqliteSynchronous = "full"
    @Option(help: "Largest request body in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Step attempts executing at once on this node.") var maxConcurrentSteps = 64
    @Option(help: "Seconds a claimed task stays leased without a heartbeat: a dead node's work is taken over after this.")
    var leaseSeconds = 30.0
    @Option(help: "Seconds between heartbeats (default: a third of the lease).") var heartbeatSeconds: Double?
    @Option(help: "Longest pause, in milliseconds, between looks for work when nothing wakes the node.") var pollIntervalMs = 1000
    @Option(help: "Seconds a leadership lasts without renewal: a dead leader is replaced after about this.") var leaderTtlSeconds = 10.0
    @Option(help: "Node identity in leases and history (default: host-pid-random).") var nodeId: String?
    @Option(help: "Hours an Idempotency-Key keeps answering with its run.") var idempotencyRetentionHours = 24.0
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel = "info"
    @Option(help: "Log format: text (one line per entry) or json (one JSON object per line).") var logFormat = "text"
    @Flag(inversion: .prefixedNo, help: "Serve /metrics (Prometheus text format, to keys with the monitor or admin role).")
    var metrics = true
    @Option(help: "Live event streams this node serves at once (more are refused with 429).") var maxStreams = 256
    @Flag(inversion: .prefixedNo, help: "Compress answers over 1 KiB with gzip for clients that send Accept-Encoding: gzip.")
    var compression = true
    @Option(
        help:
            "Export traces over OTLP/HTTP to this collector (http://otel-collector:4318 posts to /v1/traces; a URL with a path is used as is); OTEL_* variables apply too. Needs the OTel trait (on by default)."
    )
    var otlpEndpoint: String?
    @Option(help: "The OTLP encoding: http/protobuf or http/json.") var otlpProtocol = "http/protobuf"
    @Option(help: "The service name traces are reported under.") var otelServiceName = "uwf"
    @Option(help: "A web origin allowed to call the API from a browser (CORS; repeatable; * for any). None by default.")
    var corsOrigin: [String] = []
    @Option(help: "A load balancer (address or CIDR; repeatable) whose X-Forwarded-For names the client, for the lockout and the audit log.")
    var trustedProxy: [String] = []
    @Option(help: "Seconds a connection may stay idle (between requests, or sending a request's headers) before it is closed.")
    var idleTimeoutSeconds = 60.0
    @Option(help: "Seconds a client may take to send a request's body.") var requestTimeoutSeconds = 30.0
    @Option(help: "Seconds SIGTERM waits for executing steps and their commits before stopping them (they run again elsewhere).")
    var shutdownGraceSeconds = 30.0
    @OptionGroup(title: "Limits and quotas (docs/limits.md)") var limitOptions: LimitOptions
    @Flag(help: "Turn authentication off: every caller is an admin of the default tenant. For local experiments only.")
    var insecureNoAuth = false
    @Option(help: "PEM certificate chain: serve HTTPS (TLS 1.2 or later) instead of HTTP. Needs --tls-key.") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "Requests a minute one API key may make on this node, unless the key sets its own (0: no limit).")
    var rateLimitPerMinute = 1000
    @Option(help: "Accept bearer tokens (JWT) from the identity provider with this issuer (iss). Needs --jwt-audience and keys.")
    var jwtIssuer: String?
    @Option(help: "The audience (aud) tokens must be for.") var jwtAudience: String?
    @Option(help: "The identity provider's JWKS URL (fetched at start, every 5 minutes, and on an unknown key id).") var jwksUrl: String?
    @Option(help: "A JWKS file instead of a URL.") var jwksFile: String?
    @Option(help: "A file holding an HS256 secret, to accept HS256 tokens too (off unless given).") var jwtHs256SecretFile: String?
    @Option(help: "The claim naming the caller's tenant.") var jwtTenantClaim = "tenant"
    @Option(help: "The claim listing the caller's roles (an array, or a space-separated string).") var jwtRolesClaim = "roles"
    @Option(help: "The claim naming the caller.") var jwtSubjectClaim = "sub"
    @Option(help: "Seconds of clock skew allowed on exp and nbf.") var jwtLeewaySeconds = 60
    @Option(help: "Failed authentications from one address before it is locked out.") var authFailureLimit = 5
    @Option(help: "Seconds an address stays locked out after too many failed authentications.") var authLockoutSeconds = 900
    @Option(
        help:
            "File of master keys that seal secrets (<id>:<base64 of 32 bytes> per line, newest first); default $UWF_MASTER_KEY, or on embedded SQLite <data-dir>/master.key (created if missing)."
    )
    var masterKeyFile: String?
    @Option(
        help:
            "Where http_request steps may go: local (refuse link-local, metadata and this server's own API; allow loopback and private networks) or public-only (refuse those too)."
    )
    var egress = "local"
    @Option(help: "Hosts, *.suffix patterns or CIDRs http_request steps may never call, on every tenant (repeatable).")
    var egressDeny: [String] = []
    @Option(help: "Seconds between audit checkpoints (each tenant's newest entry and hash, in the log and in --audit-checkpoint-file).")
    var auditCheckpointSeconds = 300
    @Option(help: "A file to append audit checkpoints to (JSON lines), kept where the database's writers cannot change it.")
    var auditCheckpointFile: String?
    @Option(help: "Seconds past its time after which a schedule's fire counts as missed (downtime) and its missed-run policy applies.")
    var scheduleLatenessSeconds: Double = 60
    @Option(help: "Waits between webhook attempts after the first (units s, m, h), as in the Standard Webhooks specification.")
    var webhookRetrySchedule = "5s,5m,30m,2h,5h,10h,10h"
    @Option(help: "Seconds a webhook endpoint has to answer an attempt.")
    var webhookTimeoutSeconds: Double = 15
    @Option(help: "Hours dispatched events are kept for live streams to resume from (Last-Event-ID).")
    var eventRetentionHours: Double = 24
    @Option(help: "Days finished runs are kept; older ones are purged by the leader, in batches (0: kept for ever).")
    var retentionDays: Double = 0
    @OptionGroup(title: "Email of notify steps") var smtp: SMTPOptions

    /// The limits this server enforces (docs/limits.md).
    var limits: WorkflowLimits { limitOptions.limits }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical, not '\(logLevel.prefix(40))'")
        }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard ["http/protobuf", "http/json"].contains(otlpProtocol) else {
            throw ValidationError("--otlp-protocol must be http/protobuf or http/json")
        }
        if let otlpEndpoint {
            guard let url = URL(string: otlpEndpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--otlp-endpoint must be an http(s) URL such as http://otel-collector:4318")
            }
            #if !OTel
            throw ValidationError("--otlp-endpoint needs a uwf built with the OTel trait (on unless --disable-default-traits)")
            #endif
        }
        guard (1...100_000).contains(maxStreams) else { throw ValidationError("--max-streams must be from 1 to 100000") }
        for proxy in trustedProxy where IPNetwork(proxy) == nil {
            throw ValidationError("--trusted-proxy '\(proxy.prefix(60))' must be an address or a CIDR such as 10.0.0.0/8")
        }
        for origin in corsOrigin where origin != "*" {
            guard let url = URL(string: origin), ["http", "https"].contains(url.scheme ?? ""), url.host != nil, url.path.isEmpty, url.query == nil
            else { throw ValidationError("--cors-origin '\(origin.prefix(60))' must be * or an origin such as https://console.bank.example") }
        }
        guard SQLiteStoreConfiguration.Synchronous(rawValue: sqliteSynchronous.uppercased()) != nil else {
            throw ValidationError("--sqlite-synchronous must be full or normal")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        for path in [tlsCert, tlsKey].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("cannot read \(path)")
        }
        if jwtIssuer != nil || jwtAudience != nil || jwksUrl != nil || jwksFile != nil || jwtHs256SecretFile != nil {
            guard jwtIssuer != nil, jwtAudience != nil else { throw ValidationError("--jwt-issuer and --jwt-audience go together") }
            guard jwksUrl != nil || jwksFile != nil || jwtHs256SecretFile != nil else {
                throw ValidationError("bearer tokens need keys: --jwks-url, --jwks-file or --jwt-hs256-secret-file")
            }
            guard (0...600).contains(jwtLeewaySeconds) else { throw ValidationError("--jwt-leeway-seconds must be from 0 to 600") }
        }
        guard rateLimitPerMinute >= 0 else { throw ValidationError("--rate-limit-per-minute must be 0 (no limit) or more") }
        guard (1...1000).contains(authFailureLimit) else { throw ValidationError("--auth-failure-limit must be from 1 to 1000") }
        guard (1...86_400).contains(authLockoutSeconds) else { throw ValidationError("--auth-lockout-seconds must be from 1 to 86400") }
        guard maxBodyBytes > 0 else { throw ValidationError("--max-body-bytes must be positive") }
        guard EgressPolicy.Mode(rawValue: egress) != nil else { throw ValidationError("--egress must be local or public-only") }
        for rule in egressDeny where EgressRule(rule) == nil {
            throw ValidationError("--egress-deny '\(rule.prefix(60))' is not a host name, *.suffix pattern or CIDR")
        }
        guard EventRelay.Configuration.parseSchedule(webhookRetrySchedule) != nil else {
            throw ValidationError("--webhook-retry-schedule must be 1 to 20 waits such as 5s,5m,30m,2h (each at most a week)")
        }
        guard (0...36_500).contains(retentionDays) else { throw ValidationError("--retention-days must be from 0 (off) to 36500") }
        guard (1...300).contains(webhookTimeoutSeconds) else { throw ValidationError("--webhook-timeout-seconds must be from 1 to 300") }
        guard (0.01...8760).contains(eventRetentionHours) else { throw ValidationError("--event-retention-hours must be from 0.01 to 8760") }
        guard (1...86_400).contains(scheduleLatenessSeconds) else { throw ValidationError("--schedule-lateness-seconds must be from 1 to 86400") }
        guard (10...86_400).contains(auditCheckpointSeconds) else { throw ValidationError("--audit-checkpoint-seconds must be from 10 to 86400") }
        guard leaseSeconds >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
        guard heartbeatSeconds.map({ $0 > 0 && $0 * 2 <= leaseSeconds }) ?? true else {
            throw ValidationError("--heartbeat-seconds must be positive and at most half of --lease-seconds")
        }
        guard pollIntervalMs >= 10 else { throw ValidationError("--poll-interval-ms must be at least 10") }
        guard leaderTtlSeconds >= 1 else { throw ValidationError("--leader-ttl-seconds must be at least 1") }
        guard idleTimeoutSeconds > 0, idleTimeoutSeconds <= 86_400 else { throw ValidationError("--idle-timeout-seconds must be from 0 to 86400") }
        guard shutdownGraceSeconds > 0, shutdownGraceSeconds <= 3_600 else {
            throw ValidationError("--shutdown-grace-seconds must be more than 0 and at most 3600")
        }
        guard requestTimeoutSeconds > 0, requestTimeoutSeconds <= 3_600 else {
            throw ValidationError("--request-timeout-seconds must be from 0 to 3600")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        if logFormat == "json" {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        } else {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let logger = Logger(label: "uwf")

        var engineConfiguration = EngineConfiguration(maxConcurrentSteps: maxConcurrentSteps)
        if let nodeId { engineConfiguration.nodeID = nodeId }
        engineConfiguration.leaseDuration = .milliseconds(Int64(leaseSeconds * 1000))
        engineConfiguration.heartbeatInterval = .milliseconds(Int64((heartbeatSeconds ?? leaseSeconds / 3) * 1000))
        engineConfiguration.pollInterval = .milliseconds(Int64(pollIntervalMs))
        guard idempotencyRetentionHours > 0 else { throw ValidationError("--idempotency-retention-hours must be positive") }
        engineConfiguration.idempotencyKeyRetention = .milliseconds(Int64(idempotencyRetentionHours * 3_600_000))
        try engineConfiguration.validate()

        let url = database ?? ProcessInfo.processInfo.environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        engineConfiguration.masterKeys = try MasterKeys.load(file: masterKeyFile, dataDirectory: url == nil ? dataDirectory : nil, logger: logger)
        if let url {
            let store = PostgresStore(configuration: try PostgresStoreConfiguration(url: url), logger: logger)
            // The pool runs as the group's first service (so it stops last); the node starts once the schema is current.
            let dataDirectory = dataDirectory
            let secure = !insecureNoAuth
            try await serve(
                store: store,
                description: store.configuration.redacted,
                engine: engineConfiguration,
                poolSize: store.configuration.maximumConnections,
                logger: logger,
                first: [store],
                prepare: {
                    try await store.migrate()
                    if secure { try await Bootstrap.adminKey(store: store, dataDirectory: dataDirectory, logger: logger) }
                }
            )
        } else {
            let path = URL(fileURLWithPath: dataDirectory).appendingPathComponent("uwf.sqlite").path
            let store = try SQLiteStore(
                configuration: .init(
                    path: path,
                    synchronous: .init(rawValue: sqliteSynchronous.uppercased()) ?? .full
                )
            )
            let dataDirectory = dataDirectory
            let secure = !insecureNoAuth
            try await serve(
                store: store,
                description: path,
                engine: engineConfiguration,
                poolSize: store.configuration.maximumReaderCount + 1,
                logger: logger,
                prepare: {
                    if secure { try await Bootstrap.adminKey(store: store, dataDirectory: dataDirectory, logger: logger) }
                }
            )
        }
    }

    /// Wires the components in one place and runs them until SIGTERM or SIGINT.
    private func serve(
        store: any WorkflowStore,
        description: String,
        engine engineConfiguration: EngineConfiguration,
        poolSize: Int,
        logger: Logger,
        first: [any Service] = [],
        prepare: @escaping @Sendable () async throws -> Void = {}
    ) async throws {
        // With master keys, tenants may have their payloads encrypted at rest: everything above the driver sees
        // plaintext through this wrapper.
        let store: any WorkflowStore = engineConfiguration.masterKeys.map { EncryptingStore(base: store, sealer: PayloadSealer(keys: $0)) } ?? store
        let registry = WorkflowRegistry(store: store, limits: limits)
        // One registry for the node: ours, and whatever a library reports through swift-metrics.
        let metrics: WorkflowMetrics? = self.metrics ? WorkflowMetrics(version: uwfVersion) : nil
        if let metrics { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry)) }
        let http = HTTPRequestStepExecutor.makeClient()
        let ownPorts = OwnPorts(port == 0 ? [] : [port])
        let egressPolicy = EgressPolicy(
            mode: EgressPolicy.Mode(rawValue: egress) ?? .local,
            ownPorts: ownPorts,
            deny: egressDeny.compactMap(EgressRule.init)
        )
        let httpExecutor = HTTPRequestStepExecutor(client: http, egress: egressPolicy)
        let engine = WorkflowEngine(
            configuration: engineConfiguration,
            store: store,
            registry: registry,
            executors: .builtin(
                http: httpExecutor,
                notify: NotifyStepExecutor(
                    store: store,
                    http: httpExecutor,
                    smtp: try smtp.configuration()
                )
            ),
            metrics: metrics,
            logger: logger
        )
        let ttl = Duration.milliseconds(Int64(leaderTtlSeconds * 1000))
        let leader = LeaderElector(
            store: store,
            nodeID: engineConfiguration.nodeID,
            configuration: .init(
                ttl: ttl,
                checkInterval: min(.seconds(2), ttl / 3),
                idempotencyKeyRetention: engineConfiguration.idempotencyKeyRetention,
                runRetention: retentionDays > 0 ? .seconds(Int64(retentionDays * 86_400)) : nil
            ),
            logger: logger
        )
        metrics?.onScrape {
            metrics?.leader(leader.isLeader)
            metrics?.databasePool(size: poolSize, inUse: nil)
        }
        let authentication: Authentication
        var extraServices: [any Service] = []
        if insecureNoAuth {
            logger.warning(
                "AUTHENTICATION IS OFF (--insecure-no-auth): anyone who reaches this port is an admin. Never run so outside a local experiment."
            )
            authentication = .disabled
        } else {
            let keys = APIKeyAuthenticator(store: store)
            var tokens: JWTAuthenticator?
            if let issuer = jwtIssuer, let audience = jwtAudience {
                var configuration = JWTConfiguration(issuer: issuer, audience: audience, jwksURL: jwksUrl, jwksFile: jwksFile)
                if let file = jwtHs256SecretFile {
                    let secret = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                    // jwt-kit asserts this (and will require it): a shorter HMAC key is weaker than the hash.
                    guard secret.utf8.count >= 32 else { throw ValidationError("the HS256 secret in \(file) must be at least 32 bytes") }
                    configuration.hs256Secret = secret
                }
                configuration.tenantClaim = jwtTenantClaim
                configuration.rolesClaim = jwtRolesClaim
                configuration.subjectClaim = jwtSubjectClaim
                configuration.leeway = .seconds(jwtLeewaySeconds)
                let authenticator = JWTAuthenticator(configuration: configuration) { url in
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
                    guard response.status == .ok else { throw ValidationError("\(url) answered \(response.status.code)") }
                    return Data(try await response.body.collect(upTo: 1 << 20).readableBytesView)
                }
                do {
                    try await authenticator.refresh()
                } catch {
                    // The provider may be down at start: tokens are refused until a refresh succeeds.
                    logger.error("could not load the identity provider's keys; will retry", metadata: ["error": "\(error)"])
                }
                tokens = authenticator
                extraServices.append(KeyRefresher(tokens: authenticator, logger: logger))
            }
            authentication = .credentials(keys, tokens: tokens)
            extraServices.append(KeyUsageRecorder(keys: keys))
        }
        #if OTel
        if let otlpEndpoint {
            // Traces only: logs and metrics have their own outputs (stderr, /metrics).
            var otel = OTel.Configuration.default
            otel.serviceName = otelServiceName
            otel.resourceAttributes["service.instance.id"] = engineConfiguration.nodeID
            otel.resourceAttributes["service.version"] = uwfVersion
            otel.logs.enabled = false
            otel.metrics.enabled = false
            // As OTEL_EXPORTER_OTLP_ENDPOINT: a collector's base URL gets the traces path; a URL with a path is used as is.
            let path = URL(string: otlpEndpoint)?.path ?? ""
            otel.traces.otlpExporter.endpoint =
                path.isEmpty || path == "/" ? otlpEndpoint.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/v1/traces" : otlpEndpoint
            otel.traces.otlpExporter.protocol = otlpProtocol == "http/json" ? .httpJSON : .httpProtobuf
            otel.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
            otel.diagnosticLogLevel = .warning
            extraServices.append(try OTel.bootstrap(configuration: otel))
            logger.notice("exporting traces over OTLP", metadata: ["endpoint": "\(otlpEndpoint)", "protocol": "\(otlpProtocol)"])
        }
        #endif
        let api = WorkflowAPI(
            store: store,
            registry: registry,
            engine: engine,
            configuration: .init(
                maxBodyBytes: maxBodyBytes,
                nodeTimeout: engineConfiguration.leaseDuration,
                limits: limits,
                requestTimeout: .milliseconds(Int64(requestTimeoutSeconds * 1000)),
                masterKeys: engineConfiguration.masterKeys,
                maxStreams: maxStreams,
                corsOrigins: corsOrigin,
                compression: compression,
                quotas: limitOptions.quotas,
                trustedProxies: trustedProxy.compactMap(IPNetwork.init)
            ),
            authentication: authentication,
            limits: CallerLimits(
                rateLimiter: RateLimiter(defaultPerMinute: rateLimitPerMinute),
                loginGuard: LoginGuard(
                    maxFailures: authFailureLimit,
                    window: .seconds(authLockoutSeconds),
                    lockout: .seconds(authLockoutSeconds)
                )
            )
        )
        let host = host
        let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .milliseconds(Int64(idleTimeoutSeconds * 1000))))
        var server = http1
        var scheme = "http"
        if let tlsCert, let tlsKey {
            var tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(tlsCert).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem))
            )
            tls.minimumTLSVersion = .tlsv12
            server = try .tls(http1, tlsConfiguration: tls)
            scheme = "https"
        }
        let listening = scheme
        let app = Application(
            router: api.makeRouter(),
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: "uwf"),
            services: [
                engine, leader,
                Scheduler(
                    store: store,
                    registry: registry,
                    engine: engine,
                    isLeader: { leader.isLeader },
                    configuration: .init(lateness: .milliseconds(Int64(scheduleLatenessSeconds * 1000))),
                    logger: logger
                ),
                EventRelay(
                    store: store,
                    http: http,
                    egress: egressPolicy,
                    masterKeys: engineConfiguration.masterKeys,
                    isLeader: { leader.isLeader },
                    configuration: .init(
                        retrySchedule: EventRelay.Configuration.parseSchedule(webhookRetrySchedule) ?? [],
                        attemptTimeout: .milliseconds(Int64(webhookTimeoutSeconds * 1000)),
                        retention: .milliseconds(Int64(eventRetentionHours * 3_600_000))
                    ),
                    metrics: metrics,
                    logger: logger
                ),
                AuditCheckpointer(store: store, interval: .seconds(auditCheckpointSeconds), file: auditCheckpointFile, logger: logger),
            ]
                + extraServices,
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                ownPorts.add(port)
                // Tests and scripts read this line to learn the port when started with --port 0.
                FileHandle.standardOutput.write(
                    Data("uwf listening on \(listening)://\(host):\(port) (node \(engineConfiguration.nodeID), database \(description))\n".utf8)
                )
            },
            logger: logger
        )
        // Shutdown always finishes: past the grace period, executions are cancelled (their leases lapse and the work
        // runs again), and a task that ignores cancellation for ten more seconds ends the process.
        let node = AfterPreparation(prepare: prepare, service: app)
        var group = ServiceGroupConfiguration(services: first + [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .milliseconds(Int64(shutdownGraceSeconds * 1000))
        group.maximumCancellationDuration = .seconds(10)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            try? await http.shutdown()
            if "\(error)".contains("Address already in use") {
                throw ValidationError("port \(port) on \(host) is already in use (another uwf serve?); choose another with --port")
            }
            throw error
        }
        try await http.shutdown()
    }
}
