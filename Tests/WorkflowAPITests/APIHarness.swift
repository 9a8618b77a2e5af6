import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WorkflowAPI
import WorkflowEngine
import WorkflowIdentity
import WorkflowObservability
import WorkflowPrimitive
import WorkflowRegistry
import WorkflowStore
import WorkflowStorePostgres
import WorkflowStoreSQLite
import WorkflowTestSupport

/// The storage an API test runs on.
enum APIDriver: String, CaseIterable, CustomStringConvertible, Sendable {
    case sqlite
    case postgres

    static var all: [APIDriver] { PostgresTestDatabase.enabled ? [.sqlite, .postgres] : [.sqlite] }
    var description: String { rawValue }
}

/// The real application (router, engine, and a SQLite file or a PostgreSQL schema) served over a real socket, for
/// one test.
func withAPI<T: Sendable>(
    _ driver: APIDriver = .sqlite,
    maxBodyBytes: Int = 1 << 20,
    limits: CallerLimits = CallerLimits(),
    tokens: JWTAuthenticator? = nil,
    leaderServices: Bool = false,
    _ body: @Sendable (any TestClientProtocol) async throws -> T
) async throws -> T {
    try await withAPIEnvironment(driver, maxBodyBytes: maxBodyBytes, limits: limits, tokens: tokens, leaderServices: leaderServices) { client, _ in
        try await body(client)
    }
}

/// What a test may reach besides the HTTP API: the store, and the database itself (to tamper with it).
struct APITestEnvironment: Sendable {
    let store: any WorkflowStore
    /// The SQLite file, on the SQLite driver.
    let sqlitePath: String?
    /// The PostgreSQL store (its client talks to the test's schema), on the PostgreSQL driver.
    let postgres: PostgresStore?
    let masterKeys: MasterKeyring
    /// A local SMTP server for `notify` steps' email, when the test runs one.
    var smtpPort: Int? = nil
    /// The whole relay configuration (TLS, login), instead of a plain relay on `smtpPort`.
    var smtp: SMTPConfiguration? = nil
    /// Whether this node also fires schedules and relays events (the leader's services). Off unless a test needs
    /// them: dozens of harnesses polling at once loaded the two-core machine enough to slow unrelated tests.
    var leaderServices: Bool = false
    /// Live streams the node serves at once.
    var maxStreams: Int = 256
    /// How many keys, webhooks, templates, schedules and secrets a tenant keeps.
    var quotas: StoreQuotas = .default
    /// Load balancers whose X-Forwarded-For is believed.
    var trustedProxies: [IPNetwork] = []
    /// Every route of the router, as "METHOD /path/{param}".
    var routes: [String] = []
}

/// `withAPI` with the environment, and secrets enabled (a master key made for the test).
func withAPIEnvironment<T: Sendable>(
    _ driver: APIDriver = .sqlite,
    maxBodyBytes: Int = 1 << 20,
    limits: CallerLimits = CallerLimits(),
    tokens: JWTAuthenticator? = nil,
    egress: EgressPolicy = EgressPolicy(),
    smtpPort: Int? = nil,
    smtp: SMTPConfiguration? = nil,
    leaderServices: Bool = false,
    maxStreams: Int = 256,
    quotas: StoreQuotas = .default,
    trustedProxies: [IPNetwork] = [],
    _ body: @Sendable (any TestClientProtocol, APITestEnvironment) async throws -> T
) async throws -> T {
    let keys = try MasterKeyring(text: MasterKeyring.generateLine(id: "test1"))
    switch driver {
    case .sqlite:
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("uwf-api-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("uwf.sqlite").path
        let store = try SQLiteStore(configuration: .init(path: path))
        let environment = APITestEnvironment(
            store: store,
            sqlitePath: path,
            postgres: nil,
            masterKeys: keys,
            smtpPort: smtpPort,
            smtp: smtp,
            leaderServices: leaderServices,
            maxStreams: maxStreams,
            quotas: quotas,
            trustedProxies: trustedProxies
        )
        return try await withAPI(on: environment, maxBodyBytes: maxBodyBytes, limits: limits, tokens: tokens, egress: egress, body)
    case .postgres:
        return try await withPostgresStore { store in
            let environment = APITestEnvironment(
                store: store,
                sqlitePath: nil,
                postgres: store,
                masterKeys: keys,
                smtpPort: smtpPort,
                smtp: smtp,
                leaderServices: leaderServices,
                maxStreams: maxStreams,
                quotas: quotas,
                trustedProxies: trustedProxies
            )
            return try await withAPI(on: environment, maxBodyBytes: maxBodyBytes, limits: limits, tokens: tokens, egress: egress, body)
        }
    }
}

private func withAPI<T: Sendable>(
    on environment: APITestEnvironment,
    maxBodyBytes: Int,
    limits: CallerLimits,
    tokens: JWTAuthenticator?,
    egress: EgressPolicy,
    _ body: @Sendable (any TestClientProtocol, APITestEnvironment) async throws -> T
) async throws -> T {
    // As `uwf serve` does with master keys: tenants may turn payload encryption on.
    let store: any WorkflowStore = EncryptingStore(base: environment.store, sealer: PayloadSealer(keys: environment.masterKeys))
    let registry = WorkflowRegistry(store: store)
    var logger = Logger(label: "api-test")
    logger.logLevel = .warning
    let http = HTTPRequestStepExecutor.makeClient()
    var configuration = EngineConfiguration(pollInterval: .milliseconds(200))
    configuration.masterKeys = environment.masterKeys
    configuration.tenantSettingsTTL = .zero
    let engine = WorkflowEngine(
        configuration: configuration,
        store: store,
        registry: registry,
        executors: .builtin(
            http: HTTPRequestStepExecutor(client: http, egress: egress),
            notify: NotifyStepExecutor(
                store: store,
                http: HTTPRequestStepExecutor(client: http, egress: egress),
                smtp: environment.smtp ?? environment.smtpPort.map { SMTPConfiguration(host: "127.0.0.1", port: $0, from: "uwf@bank.example") }
            )
        ),
        metrics: WorkflowMetrics(version: "test"),
        logger: logger
    )
    _ = try await store.apiKeyInsert(
        APIKeyRecord(
            id: "test-admin",
            tenantID: defaultTenantID,
            name: "test admin",
            prefix: APIKeys.displayPrefix(testAdminKey),
            hash: APIKeys.hash(testAdminKey),
            roles: ["admin"],
            createdAt: Date(),
            createdBy: nil
        )
    )
    let api = WorkflowAPI(
        store: store,
        registry: registry,
        engine: engine,
        configuration: {
            var configuration = APIConfiguration(maxBodyBytes: maxBodyBytes, masterKeys: environment.masterKeys)
            configuration.maxStreams = environment.maxStreams
            configuration.quotas = environment.quotas
            configuration.trustedProxies = environment.trustedProxies
            return configuration
        }(),
        authentication: .credentials(APIKeyAuthenticator(store: store), tokens: tokens),
        limits: limits
    )
    // This one node is the leader: it fires schedules (`uwf serve` does so only while it holds the leadership).
    let scheduler = Scheduler(
        store: store,
        registry: registry,
        engine: engine,
        isLeader: { true },
        configuration: .init(pollInterval: .milliseconds(100)),
        logger: logger
    )
    // And it relays events to webhooks, retrying quickly (two more attempts, 200 ms apart) so tests see it all.
    let relay = EventRelay(
        store: store,
        http: http,
        egress: egress,
        masterKeys: environment.masterKeys,
        isLeader: { true },
        configuration: .init(pollInterval: .milliseconds(50), retrySchedule: [.milliseconds(200), .milliseconds(200)], attemptTimeout: .seconds(5)),
        logger: logger
    )
    let router = api.makeRouter()
    let environment = {
        var environment = environment
        environment.routes = router.routes.map { "\($0.method) \($0.path)" }
        return environment
    }()
    let app = Application(
        router: router,
        services: environment.leaderServices ? [engine, scheduler, relay] : [engine],
        logger: logger
    )
    do {
        let result = try await app.test(.live) { client in try await body(client, environment) }
        try await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

extension TestClientProtocol {
    /// Sends JSON (or any text) and returns the status and the parsed JSON body.
    @discardableResult
    func call(
        _ method: HTTPRequest.Method,
        _ uri: String,
        _ body: String? = nil,
        contentType: String = "application/json",
        headers extra: [String: String] = [:]
    ) async throws -> (status: HTTPResponse.Status, json: JSONValue, headers: HTTPFields) {
        var headers: HTTPFields = [:]
        // Every call authenticates as the test admin unless it brings its own credentials (or "Authorization": "").
        if extra["Authorization"] == nil, extra["X-API-Key"] == nil { headers[.authorization] = "Bearer \(testAdminKey)" }
        for (name, value) in extra where !value.isEmpty { headers[HTTPField.Name(name)!] = value }
        if body != nil { headers[.contentType] = contentType }
        let response = try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let data = Data(response.body.readableBytesView)
        let json = data.isEmpty ? JSONValue.null : ((try? JSONValue.parse(data)) ?? .string(String(decoding: data, as: UTF8.self)))
        return (response.status, json, response.headers)
    }

    /// Sends a request as the test admin and returns the raw answer (headers and bytes, undecoded).
    func raw(
        _ method: HTTPRequest.Method,
        _ uri: String,
        headers extra: [String: String]
    ) async throws -> (
        status: HTTPResponse.Status, headers: HTTPFields, body: [UInt8]
    ) {
        var headers: HTTPFields = [.authorization: "Bearer \(testAdminKey)"]
        for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
        let response = try await execute(uri: uri, method: method, headers: headers, body: nil)
        return (response.status, response.headers, Array(response.body.readableBytesView))
    }

    /// Polls a run until it has finished.
    func waitForRun(_ id: String, timeout: Duration = .seconds(20)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (_, run, _) = try await call(.get, "/api/v1/executions/\(id)")
            if ["COMPLETED", "FAILED", "CANCELLED"].contains(run["status"]?.stringValue ?? "") || ContinuousClock.now > deadline {
                return run
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

let sequenceWorkflow = """
    {"name": "greet", "version": "1.0.0", "description": "says hello",
     "definition": {"steps": [
       {"id": "hello", "type": "echo", "config": {"greeting": "hello ${input.name}"}},
       {"id": "shout", "type": "transform", "depends_on": ["hello"], "config": {"output": "${upper(steps.hello.output.greeting)}"}}
     ], "output": {"message": "${steps.shout.output}"}}}
    """
