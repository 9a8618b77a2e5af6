import Foundation
import NIOSSL
import PostgresNIO

/// Settings of the PostgreSQL store, usually from a `postgres://` URL.
public struct PostgresStoreConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    /// The schema holding uwf's tables (created if missing). Lets several deployments, or tests, share one database.
    public var schema: String
    /// `disable`, `prefer` (default) or `require`, as libpq's `sslmode`.
    public var tlsMode: String
    /// Most connections this node opens. Each node also holds one more for `LISTEN`.
    public var maximumConnections: Int
    public var connectTimeout: Duration
    /// Longest wait for one store operation (a transaction, with its wait for a connection): past it the operation
    /// fails as `unavailable` and the caller retries. Keeps every loop of a node alive when the database goes away.
    public var operationTimeout: Duration

    public init(
        host: String = "127.0.0.1",
        port: Int = 5432,
        username: String = "postgres",
        password: String? = nil,
        database: String? = nil,
        schema: String = "uwf",
        tlsMode: String = "prefer",
        maximumConnections: Int = 20,
        connectTimeout: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.schema = schema
        self.tlsMode = tlsMode
        self.maximumConnections = maximumConnections
        self.connectTimeout = connectTimeout
        self.operationTimeout = operationTimeout
    }

    /// Parses `postgres://user:password@host:port/database?sslmode=disable&schema=uwf&pool_size=20`, and
    /// `connect_timeout` (seconds, as libpq's) and `operation_timeout` (seconds, uwf's own).
    public init(url text: String) throws {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql" else {
            throw PostgresStoreError("the database URL must look like postgres://user@host:5432/database")
        }
        self.init()
        host = url.host?.isEmpty == false ? url.host! : "127.0.0.1"
        port = url.port ?? 5432
        username = url.user?.removingPercentEncoding ?? "postgres"
        password = url.password?.removingPercentEncoding
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        database = path.isEmpty ? nil : path
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode": tlsMode = item.value ?? "prefer"
            case "schema", "search_path": schema = item.value ?? "uwf"
            case "pool_size":
                guard let n = item.value.flatMap(Int.init), n >= 2 else { throw PostgresStoreError("pool_size must be an integer of at least 2") }
                maximumConnections = n
            case "connect_timeout", "operation_timeout":
                guard let seconds = item.value.flatMap(Double.init), seconds >= 0.1, seconds <= 3600 else {
                    throw PostgresStoreError("\(item.name) must be a number of seconds from 0.1 to 3600")
                }
                let duration = Duration.milliseconds(Int64(seconds * 1000))
                if item.name == "connect_timeout" { connectTimeout = duration } else { operationTimeout = duration }
            default: break
            }
        }
        guard ["disable", "prefer", "require"].contains(tlsMode) else { throw PostgresStoreError("sslmode must be disable, prefer or require") }
        guard schema.range(of: "^[a-z_][a-z0-9_]{0,62}$", options: .regularExpression) != nil else {
            throw PostgresStoreError("schema must be a lowercase identifier")
        }
    }

    /// The URL without its password, for logs.
    public var redacted: String {
        "postgres://\(username)@\(host):\(port)/\(database ?? "")?schema=\(schema)"
    }

    var client: PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch tlsMode {
        case "disable": tls = .disable
        case "require": tls = .require(.makeClientConfiguration())
        default: tls = .prefer(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: tls
        )
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = connectTimeout
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        return configuration
    }
}

/// A failure of the PostgreSQL driver's own making (bad configuration, unexpected data).
public struct PostgresStoreError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
