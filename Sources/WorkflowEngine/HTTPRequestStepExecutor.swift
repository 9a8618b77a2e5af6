import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Tracing
import WorkflowPrimitive

/// `http_request`: calls a remote system.
///
/// Output: `{"status", "headers", "body"}`, the body parsed as JSON when it is JSON. 5xx answers, timeouts and
/// connection errors are retriable; other non-2xx answers fail the step for good. Every attempt of one step of one
/// run sends the same `Idempotency-Key`, so the remote side can deduplicate retries.
///
/// Every address it calls is checked against the egress policy (the node's and the tenant's), redirects included:
/// it follows up to `maxRedirects` itself, checking each hop, and drops `Authorization` and `Cookie` when a redirect
/// leaves the host. A refusal fails the step with `egress_denied`, naming the rule.
public struct HTTPRequestStepExecutor: StepExecutor {
    private let client: HTTPClient
    private let defaultTimeoutMs: Int
    private let maxResponseBytes: Int
    private let egress: EgressPolicy
    private let maxRedirects: Int

    /// `client` must not follow redirects itself (make it with ``makeClient(tls:)``), or hops escape the egress check.
    public init(
        client: HTTPClient,
        defaultTimeoutMs: Int = 30_000,
        maxResponseBytes: Int = 10 << 20,
        egress: EgressPolicy = EgressPolicy(),
        maxRedirects: Int = 5
    ) {
        self.client = client
        self.defaultTimeoutMs = defaultTimeoutMs
        self.maxResponseBytes = maxResponseBytes
        self.egress = egress
        self.maxRedirects = maxRedirects
    }

    /// A client for this executor: redirects are returned to it, not followed.
    public static func makeClient() -> HTTPClient {
        HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
    }

    public func execute(_ execution: StepExecution) async -> StepResult {
        let config = execution.input
        guard var url = config["url"]?.stringValue, url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return .failure(StepFailure(code: "invalid_config", message: "url must be an http:// or https:// URL", retriable: false))
        }
        let displayURL = url
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: (config["method"]?.stringValue ?? "GET").uppercased())
        for (name, value) in config["headers"]?.objectValue ?? [:] {
            if let text = value.stringValue { request.headers.add(name: name, value: text) }
        }
        // W3C trace context: the remote system's spans join the step attempt's (when the run is traced).
        if !request.headers.contains(name: "traceparent"), let context = ServiceContext.current {
            InstrumentationSystem.instrument.inject(context, into: &request.headers, using: HTTPHeadersInjector())
        }
        if !request.headers.contains(name: "Idempotency-Key") {
            request.headers.add(name: "Idempotency-Key", value: execution.idempotencyKey)
        }
        if let body = config["body"], !body.isNull {
            if case .string(let text) = body {
                request.body = .bytes(ByteBuffer(string: text))
                if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "text/plain") }
            } else {
                request.body = .bytes(ByteBuffer(bytes: body.canonicalData()))
                if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            }
        }
        let timeoutMs = config["timeout_ms"]?.integer(in: 1...(1 << 42)) ?? defaultTimeoutMs
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        let allow = execution.tenantSettings.egressAllow.compactMap(EgressRule.init)
        let deny = execution.tenantSettings.egressDeny.compactMap(EgressRule.init)
        do {
            var hops = 0
            while true {
                if let refusal = await refusal(url, allow: allow, deny: deny, within: deadline - ContinuousClock.now) { return .failure(refusal) }
                try Task.checkCancellation()
                let remaining = max(.milliseconds(1), deadline - ContinuousClock.now)
                let response = try await client.execute(
                    request,
                    timeout: .nanoseconds(remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000)
                )
                if [301, 302, 303, 307, 308].contains(response.status.code), let location = response.headers.first(name: "location"),
                    hops < maxRedirects
                {
                    guard let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL.absoluteString,
                        next.hasPrefix("http://") || next.hasPrefix("https://")
                    else {
                        return .failure(StepFailure(code: "http_error", message: "\(displayURL) redirected to an invalid location", retriable: false))
                    }
                    hops += 1
                    if URLComponents(string: next)?.host?.lowercased() != URLComponents(string: url)?.host?.lowercased() {
                        request.headers.remove(name: "Authorization")
                        request.headers.remove(name: "Cookie")
                    }
                    if response.status.code == 303 || (request.method == .POST && [301, 302].contains(response.status.code)) {
                        request.method = .GET
                        request.body = nil
                        request.headers.remove(name: "Content-Type")
                    }
                    url = next
                    request.url = next
                    continue
                }
                let bytes = try await response.body.collect(upTo: maxResponseBytes)
                let output = Self.output(response, bytes)
                switch response.status.code {
                case 200..<300:
                    return .success(output)
                case 500..<600, 408, 429:
                    return .failure(
                        StepFailure(
                            code: "http_error",
                            message: "\(request.method.rawValue) \(displayURL) answered \(response.status.code)",
                            retriable: true,
                            details: output
                        )
                    )
                default:
                    return .failure(
                        StepFailure(
                            code: "http_error",
                            message: "\(request.method.rawValue) \(displayURL) answered \(response.status.code)",
                            retriable: false,
                            details: output
                        )
                    )
                }
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failure(StepFailure(code: "timeout", message: "\(displayURL) did not answer within \(timeoutMs) ms", retriable: true))
        } catch is CancellationError {
            return .failure(StepFailure(code: "cancelled", message: "cancelled", retriable: false))
        } catch let error as HTTPClientError where error == .cancelled {
            return .failure(StepFailure(code: "cancelled", message: "cancelled", retriable: false))
        } catch let error as NIOTooManyBytesError {
            return .failure(
                StepFailure(
                    code: "response_too_large",
                    message: "response larger than \(error.maxBytes ?? maxResponseBytes) bytes",
                    retriable: false
                )
            )
        } catch {
            return .failure(StepFailure(code: "connection_error", message: "\(displayURL): \(error)", retriable: true))
        }
    }

    /// Why `url` may not be called, or nil.
    private func refusal(_ url: String, allow: [EgressRule], deny: [EgressRule], within timeout: Duration) async -> StepFailure? {
        guard let components = URLComponents(string: url), let rawHost = components.host, !rawHost.isEmpty else {
            return StepFailure(code: "invalid_config", message: "url has no host", retriable: false)
        }
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        let port = components.port ?? (components.scheme?.lowercased() == "https" ? 443 : 80)
        let addresses = await Resolver.resolve(host, timeout: max(.milliseconds(1), timeout))
        guard !addresses.isEmpty else {
            if Task.isCancelled { return StepFailure(code: "cancelled", message: "cancelled", retriable: false) }
            return StepFailure(code: "connection_error", message: "\(host) does not resolve", retriable: true)
        }
        guard let why = egress.refusal(host: host, port: port, addresses: addresses, allow: allow, deny: deny) else { return nil }
        return StepFailure(code: "egress_denied", message: why, retriable: false)
    }

    private static func output(_ response: HTTPClientResponse, _ bytes: ByteBuffer) -> JSONValue {
        var headers: [String: JSONValue] = [:]
        for (name, value) in response.headers {
            let key = name.lowercased()
            if case .string(let existing) = headers[key] {
                headers[key] = .string(existing + ", " + value)
            } else {
                headers[key] = .string(value)
            }
        }
        let data = Data(bytes.readableBytesView)
        var body: JSONValue = .null
        if !data.isEmpty {
            let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
            if contentType.contains("json"), let parsed = try? JSONValue.parse(data) {
                body = parsed
            } else {
                body = .string(String(decoding: data, as: UTF8.self))
            }
        }
        return ["status": .number(Double(response.status.code)), "headers": .object(headers), "body": body]
    }
}

/// Writes trace context into an outgoing request's headers.
struct HTTPHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) { headers.replaceOrAdd(name: key, value: value) }
}
