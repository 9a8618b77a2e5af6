import ArgumentParser
import Foundation
import Yams

/// Where `uwf serve` takes each option from: flags, then `UWF_*` environment variables, then the YAML file of
/// `--config` (or `$UWF_CONFIG`), then the defaults. Every option has one row here: its place in the file, its flag and
/// its variable (docs/operations.md lists them all, and a test keeps that list complete).
///
/// The file and the environment become flags placed before the ones typed, and the last occurrence of a flag wins: so
/// one parser, with one set of validations whose messages name the flag, serves all three sources.
struct ServeSettings {
    enum Kind: Equatable, Sendable {
        case string, integer, number
        /// A flag with no value, on when true.
        case flag
        /// A flag with an inverse (`--metrics` / `--no-metrics`).
        case toggle
        /// Repeatable; a list in the file, comma-separated in the environment.
        case list
    }

    struct Option: Sendable {
        /// `section.key` in the file.
        var key: String
        /// The flag, without its dashes.
        var flag: String
        var kind: Kind
        /// Masked by `uwf config print` (a URL's password).
        var secret = false
        /// The effective value, read from the parsed command.
        var value: @Sendable (ServeCommand) -> String?

        var environment: String { "UWF_" + flag.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    static let options: [Option] = [
        Option(key: "api.host", flag: "host", kind: .string) { $0.host },
        Option(key: "api.port", flag: "port", kind: .integer) { "\($0.port)" },
        Option(key: "api.max_body_bytes", flag: "max-body-bytes", kind: .integer) { "\($0.maxBodyBytes)" },
        Option(key: "api.idle_timeout_seconds", flag: "idle-timeout-seconds", kind: .number) { "\($0.idleTimeoutSeconds)" },
        Option(key: "api.request_timeout_seconds", flag: "request-timeout-seconds", kind: .number) { "\($0.requestTimeoutSeconds)" },
        Option(key: "api.tls_cert", flag: "tls-cert", kind: .string) { $0.tlsCert },
        Option(key: "api.tls_key", flag: "tls-key", kind: .string) { $0.tlsKey },
        Option(key: "api.rate_limit_per_minute", flag: "rate-limit-per-minute", kind: .integer) { "\($0.rateLimitPerMinute)" },
        Option(key: "api.max_streams", flag: "max-streams", kind: .integer) { "\($0.maxStreams)" },
        Option(key: "api.cors_origins", flag: "cors-origin", kind: .list) { $0.corsOrigin.joined(separator: ",") },
        Option(key: "api.trusted_proxies", flag: "trusted-proxy", kind: .list) { $0.trustedProxy.joined(separator: ",") },
        Option(key: "api.compression", flag: "compression", kind: .toggle) { "\($0.compression)" },
        Option(key: "database.url", flag: "database", kind: .string, secret: true) { $0.database },
        Option(key: "database.data_dir", flag: "data-dir", kind: .string) { $0.dataDirectory },
        Option(key: "database.sqlite_synchronous", flag: "sqlite-synchronous", kind: .string) { $0.sqliteSynchronous },
        Option(key: "executor.max_concurrent_steps", flag: "max-concurrent-steps", kind: .integer) { "\($0.maxConcurrentSteps)" },
        Option(key: "executor.lease_seconds", flag: "lease-seconds", kind: .number) { "\($0.leaseSeconds)" },
        Option(key: "executor.heartbeat_seconds", flag: "heartbeat-seconds", kind: .number) { $0.heartbeatSeconds.map { "\($0)" } },
        Option(key: "executor.poll_interval_ms", flag: "poll-interval-ms", kind: .integer) { "\($0.pollIntervalMs)" },
        Option(key: "executor.leader_ttl_seconds", flag: "leader-ttl-seconds", kind: .number) { "\($0.leaderTtlSeconds)" },
        Option(key: "executor.node_id", flag: "node-id", kind: .string) { $0.nodeId },
        Option(key: "executor.idempotency_retention_hours", flag: "idempotency-retention-hours", kind: .number) {
            "\($0.idempotencyRetentionHours)"
        },
        Option(key: "executor.shutdown_grace_seconds", flag: "shutdown-grace-seconds", kind: .number) { "\($0.shutdownGraceSeconds)" },
        Option(key: "executor.egress", flag: "egress", kind: .string) { $0.egress },
        Option(key: "executor.egress_deny", flag: "egress-deny", kind: .list) { $0.egressDeny.joined(separator: ",") },
        Option(key: "limits.max_definition_bytes", flag: "max-definition-bytes", kind: .integer) { "\($0.limitOptions.maxDefinitionBytes)" },
        Option(key: "limits.max_input_bytes", flag: "max-input-bytes", kind: .integer) { "\($0.limitOptions.maxInputBytes)" },
        Option(key: "limits.max_output_bytes", flag: "max-output-bytes", kind: .integer) { "\($0.limitOptions.maxOutputBytes)" },
        Option(key: "limits.max_delay_ms", flag: "max-delay-ms", kind: .integer) { "\($0.limitOptions.maxDelayMs)" },
        Option(key: "limits.max_timeout_ms", flag: "max-timeout-ms", kind: .integer) { "\($0.limitOptions.maxTimeoutMs)" },
        Option(key: "limits.max_runs_per_tree", flag: "max-runs-per-tree", kind: .integer) { "\($0.limitOptions.maxRunsPerTree)" },
        Option(key: "limits.max_tenants", flag: "max-tenants", kind: .integer) { "\($0.limitOptions.maxTenants)" },
        Option(key: "limits.max_api_keys_per_tenant", flag: "max-api-keys-per-tenant", kind: .integer) { "\($0.limitOptions.maxApiKeysPerTenant)" },
        Option(key: "limits.max_webhooks_per_tenant", flag: "max-webhooks-per-tenant", kind: .integer) { "\($0.limitOptions.maxWebhooksPerTenant)" },
        Option(key: "limits.max_templates_per_tenant", flag: "max-templates-per-tenant", kind: .integer) {
            "\($0.limitOptions.maxTemplatesPerTenant)"
        },
        Option(key: "limits.max_versions_per_template", flag: "max-versions-per-template", kind: .integer) {
            "\($0.limitOptions.maxVersionsPerTemplate)"
        },
        Option(key: "limits.max_schedules_per_tenant", flag: "max-schedules-per-tenant", kind: .integer) {
            "\($0.limitOptions.maxSchedulesPerTenant)"
        },
        Option(key: "limits.max_secrets_per_tenant", flag: "max-secrets-per-tenant", kind: .integer) { "\($0.limitOptions.maxSecretsPerTenant)" },
        Option(key: "limits.max_workflows_per_tenant", flag: "max-workflows-per-tenant", kind: .integer) {
            "\($0.limitOptions.maxWorkflowsPerTenant)"
        },
        Option(key: "limits.max_versions_per_workflow", flag: "max-versions-per-workflow", kind: .integer) {
            "\($0.limitOptions.maxVersionsPerWorkflow)"
        },
        Option(key: "auth.insecure_no_auth", flag: "insecure-no-auth", kind: .flag) { "\($0.insecureNoAuth)" },
        Option(key: "auth.jwt_issuer", flag: "jwt-issuer", kind: .string) { $0.jwtIssuer },
        Option(key: "auth.jwt_audience", flag: "jwt-audience", kind: .string) { $0.jwtAudience },
        Option(key: "auth.jwks_url", flag: "jwks-url", kind: .string) { $0.jwksUrl },
        Option(key: "auth.jwks_file", flag: "jwks-file", kind: .string) { $0.jwksFile },
        Option(key: "auth.jwt_hs256_secret_file", flag: "jwt-hs256-secret-file", kind: .string) { $0.jwtHs256SecretFile },
        Option(key: "auth.jwt_tenant_claim", flag: "jwt-tenant-claim", kind: .string) { $0.jwtTenantClaim },
        Option(key: "auth.jwt_roles_claim", flag: "jwt-roles-claim", kind: .string) { $0.jwtRolesClaim },
        Option(key: "auth.jwt_subject_claim", flag: "jwt-subject-claim", kind: .string) { $0.jwtSubjectClaim },
        Option(key: "auth.jwt_leeway_seconds", flag: "jwt-leeway-seconds", kind: .integer) { "\($0.jwtLeewaySeconds)" },
        Option(key: "auth.failure_limit", flag: "auth-failure-limit", kind: .integer) { "\($0.authFailureLimit)" },
        Option(key: "auth.lockout_seconds", flag: "auth-lockout-seconds", kind: .integer) { "\($0.authLockoutSeconds)" },
        Option(key: "auth.master_key_file", flag: "master-key-file", kind: .string) { $0.masterKeyFile },
        Option(key: "audit.checkpoint_seconds", flag: "audit-checkpoint-seconds", kind: .integer) { "\($0.auditCheckpointSeconds)" },
        Option(key: "audit.checkpoint_file", flag: "audit-checkpoint-file", kind: .string) { $0.auditCheckpointFile },
        Option(key: "schedules.lateness_seconds", flag: "schedule-lateness-seconds", kind: .number) { "\($0.scheduleLatenessSeconds)" },
        Option(key: "webhooks.retry_schedule", flag: "webhook-retry-schedule", kind: .string) { $0.webhookRetrySchedule },
        Option(key: "webhooks.timeout_seconds", flag: "webhook-timeout-seconds", kind: .number) { "\($0.webhookTimeoutSeconds)" },
        Option(key: "webhooks.event_retention_hours", flag: "event-retention-hours", kind: .number) { "\($0.eventRetentionHours)" },
        Option(key: "retention.days", flag: "retention-days", kind: .number) { "\($0.retentionDays)" },
        Option(key: "smtp.host", flag: "smtp-host", kind: .string) { $0.smtp.smtpHost },
        Option(key: "smtp.port", flag: "smtp-port", kind: .integer) { "\($0.smtp.smtpPort)" },
        Option(key: "smtp.from", flag: "smtp-from", kind: .string) { $0.smtp.smtpFrom },
        Option(key: "smtp.tls", flag: "smtp-tls", kind: .string) { $0.smtp.smtpTls },
        Option(key: "smtp.username", flag: "smtp-username", kind: .string) { $0.smtp.smtpUsername },
        Option(key: "smtp.password_file", flag: "smtp-password-file", kind: .string) { $0.smtp.smtpPasswordFile },
        Option(key: "smtp.ca_cert", flag: "smtp-ca-cert", kind: .string) { $0.smtp.smtpCaCert },
        Option(key: "logging.level", flag: "log-level", kind: .string) { $0.logLevel },
        Option(key: "logging.format", flag: "log-format", kind: .string) { $0.logFormat },
        Option(key: "metrics.enabled", flag: "metrics", kind: .toggle) { "\($0.metrics)" },
        Option(key: "tracing.otlp_endpoint", flag: "otlp-endpoint", kind: .string) { $0.otlpEndpoint },
        Option(key: "tracing.otlp_protocol", flag: "otlp-protocol", kind: .string) { $0.otlpProtocol },
        Option(key: "tracing.service_name", flag: "otel-service-name", kind: .string) { $0.otelServiceName },
    ]

    /// A configuration that cannot be used, with the file's key or the variable in the message.
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    /// Largest configuration file read.
    static let maxFileBytes = 1 << 20

    /// The file named by `--config` among `arguments`, or by `$UWF_CONFIG`.
    static func configPath(_ arguments: [String], environment: [String: String]) -> String? {
        var path = environment["UWF_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--config", index + 1 < arguments.count {
                path = arguments[index + 1]
                index += 1
            } else if argument.hasPrefix("--config=") {
                path = String(argument.dropFirst("--config=".count))
            }
            index += 1
        }
        return path
    }

    /// Reads the file into `section.key` → value (scalars as text, lists as lists); unknown keys are errors.
    static func load(file path: String) throws -> [String: [String]] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw Invalid(description: "cannot read the configuration file \(path)")
        }
        guard (attributes[.size] as? Int ?? 0) <= maxFileBytes else {
            throw Invalid(description: "\(path) is larger than \(maxFileBytes) bytes")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Invalid(description: "\(path) is not valid YAML: \(error)")
        }
        guard let root else { return [:] }
        guard let sections = root.mapping else { throw Invalid(description: "\(path): the top level must be a mapping of sections") }
        let known = Dictionary(uniqueKeysWithValues: options.map { ($0.key, $0) })
        var values: [String: [String]] = [:]
        for (sectionKey, sectionNode) in sections {
            let section = sectionKey.string ?? ""
            guard let entries = sectionNode.mapping else {
                let sections = Set(options.map { $0.key.split(separator: ".")[0] }).sorted().joined(separator: ", ")
                throw Invalid(description: "\(path): '\(section)' must be a section (one of \(sections)) holding options")
            }
            for (keyNode, valueNode) in entries {
                let key = "\(section).\(keyNode.string ?? "")"
                guard let option = known[key] else {
                    let near = options.filter { $0.key.hasPrefix(section + ".") }.map { $0.key }.joined(separator: ", ")
                    throw Invalid(description: "\(path): unknown option \(key)" + (near.isEmpty ? "" : " (this section has: \(near))"))
                }
                if valueNode.null != nil { continue }  // `key: null` (or empty) leaves the option to the defaults
                values[key] = try scalars(valueNode, option: option, path: path)
            }
        }
        return values
    }

    private static func scalars(_ node: Node, option: Option, path: String) throws -> [String] {
        if option.kind == .list {
            guard let items = node.sequence else { throw Invalid(description: "\(path): \(option.key) must be a list") }
            return try items.map { item in
                guard let text = item.scalar?.string else { throw Invalid(description: "\(path): \(option.key) must be a list of text") }
                return text
            }
        }
        guard let scalar = node.scalar else { throw Invalid(description: "\(path): \(option.key) must be a single value") }
        let text = scalar.string
        try check(text, option: option, source: "\(path): \(option.key)")
        return [text]
    }

    /// Checks a value's type before the flag parser sees it, so the message names where it came from.
    static func check(_ text: String, option: Option, source: String) throws {
        switch option.kind {
        case .integer where Int(text) == nil: throw Invalid(description: "\(source) must be a whole number, not '\(text.prefix(40))'")
        case .number where Double(text).map({ $0.isFinite }) != true:
            throw Invalid(description: "\(source) must be a number, not '\(text.prefix(40))'")
        case .flag, .toggle:
            guard ["true", "false"].contains(text.lowercased()) else { throw Invalid(description: "\(source) must be true or false") }
        default: break
        }
    }

    /// Where an option's effective value came from.
    enum Source: String { case flag, environment, file, `default` }

    struct Resolved {
        /// The arguments for `ServeCommand`: the file's and the environment's as flags, then the ones typed.
        var arguments: [String]
        var sources: [String: Source]
    }

    /// Merges the sources into one argument list for `ServeCommand` (flags > environment > file > defaults).
    static func resolve(_ typed: [String], environment: [String: String]) throws -> Resolved {
        let file = try configPath(typed, environment: environment).map { try load(file: $0) } ?? [:]
        let typedFlags = Set(
            typed.compactMap { argument -> String? in
                guard argument.hasPrefix("--") else { return nil }
                return String(argument.dropFirst(2).split(separator: "=", maxSplits: 1)[0])
            }
        )
        var arguments: [String] = []
        var sources: [String: Source] = [:]
        for option in options {
            let given = typedFlags.contains(option.flag) || (option.kind == .toggle && typedFlags.contains("no-" + option.flag))
            var values: [String]?
            var source = Source.default
            if let fromFile = file[option.key] {
                values = fromFile
                source = .file
            }
            var variable = environment[option.environment]
            if option.flag == "database", variable == nil { variable = environment["DATABASE_URL"] }
            if let variable, !variable.isEmpty {
                if option.kind == .list {
                    values = variable.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                } else {
                    try check(variable, option: option, source: "$\(option.environment)")
                    values = [variable]
                }
                source = .environment
            }
            if given {
                sources[option.key] = .flag
                if option.kind == .list { continue }  // typed values replace the others rather than add to them
            } else {
                sources[option.key] = source
            }
            guard let values else { continue }
            switch option.kind {
            case .flag:
                if values.first?.lowercased() == "true" { arguments.append("--\(option.flag)") }
            case .toggle:
                arguments.append(values.first?.lowercased() == "false" ? "--no-\(option.flag)" : "--\(option.flag)")
            case .list:
                for value in values { arguments += ["--\(option.flag)", value] }
            default:
                arguments += ["--\(option.flag)", values[0]]
            }
        }
        return Resolved(arguments: arguments + typed, sources: sources)
    }

    /// A URL with its password replaced by `***`.
    static func mask(_ value: String) -> String {
        guard var components = URLComponents(string: value), components.password != nil else { return value }
        components.password = "***"
        return components.string ?? "***"
    }

    /// The effective configuration as YAML in the file's shape, each value with its source.
    static func effectiveYAML(_ command: ServeCommand, sources: [String: Source]) -> String {
        var lines: [String] = ["# uwf serve: effective configuration (flags > environment > file > defaults)"]
        var section = ""
        for option in options {
            let parts = option.key.split(separator: ".", maxSplits: 1).map(String.init)
            if parts[0] != section {
                section = parts[0]
                lines.append("\(section):")
            }
            var value = option.value(command)
            if option.secret, let v = value { value = mask(v) }
            let rendered: String
            switch (option.kind, value) {
            case (_, nil): rendered = "null"
            case (.list, let v?): rendered = "[" + v.split(separator: ",").map { quoted(String($0)) }.joined(separator: ", ") + "]"
            case (.string, let v?): rendered = quoted(v)
            case (_, let v?): rendered = v
            }
            let source = sources[option.key] ?? .default
            lines.append("  \(parts[1]): \(rendered)  # \(source.rawValue == "environment" ? "$" + option.environment : source.rawValue)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
