import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WorkflowPrimitive

/// `http_request`: calls a remote system.
///
/// Output: `{"status", "headers", "body"}`, the body parsed as JSON when it is JSON. 5xx answers, timeouts and
/// connection errors are retriable; other non-2xx answers fail the step for good. Every attempt of one step of one
/// run sends the same `Idempotency-Key`, so the remote side can deduplicate retries.
public struct HTTPRequestStepExecutor: StepExecutor {
    private let client: HTTPClient
    private let defaultTimeoutMs: Int
    private let maxResponseBytes: Int

    public init(client: HTTPClient, defaultTimeoutMs: Int = 30_000, maxResponseBytes: Int = 10 << 20) {
        self.client = client
        self.defaultTimeoutMs = defaultTimeoutMs
        self.maxResponseBytes = maxResponseBytes
    }

    public func execute(_ execution: StepExecution) async -> StepResult {
        let config = execution.input
        guard let url = config["url"]?.stringValue, url.hasPrefix("http://") || url.hasPrefix("https://") else {
            return .failure(StepFailure(code: "invalid_config", message: "url must be an http:// or https:// URL", retriable: false))
        }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: (config["method"]?.stringValue ?? "GET").uppercased())
        for (name, value) in config["headers"]?.objectValue ?? [:] {
            if let text = value.stringValue { request.headers.add(name: name, value: text) }
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
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(timeoutMs)))
            let bytes = try await response.body.collect(upTo: maxResponseBytes)
            let output = Self.output(response, bytes)
            switch response.status.code {
            case 200..<300:
                return .success(output)
            case 500..<600, 408, 429:
                return .failure(
                    StepFailure(
                        code: "http_error",
                        message: "\(request.method.rawValue) \(url) answered \(response.status.code)",
                        retriable: true,
                        details: output
                    )
                )
            default:
                return .failure(
                    StepFailure(
                        code: "http_error",
                        message: "\(request.method.rawValue) \(url) answered \(response.status.code)",
                        retriable: false,
                        details: output
                    )
                )
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .failure(StepFailure(code: "timeout", message: "\(url) did not answer within \(timeoutMs) ms", retriable: true))
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
            return .failure(StepFailure(code: "connection_error", message: "\(url): \(error)", retriable: true))
        }
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
