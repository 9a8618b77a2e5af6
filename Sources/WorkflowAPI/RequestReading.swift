import Foundation
import Hummingbird
import NIOCore
import WorkflowPrimitive

extension WorkflowAPI {
    /// The query parameters of a request, refusing any not in `allowed`: a misspelt filter (`?workflow=` for
    /// `?workflow_id=`) would otherwise be ignored and answer with everything.
    func queryParameters(_ request: Request, allowed: Set<String>) throws -> Parameters {
        let query = request.uri.queryParameters
        let unknown = Set(query.map { String($0.key) }).subtracting(allowed).sorted()
        guard unknown.isEmpty else {
            let expected = allowed.isEmpty ? "none" : allowed.sorted().joined(separator: ", ")
            throw WorkflowError(.invalidRequest, "unknown query parameter \(unknown.map { "'\($0)'" }.joined(separator: ", ")); expected \(expected)")
        }
        // Each parameter takes one value: `?limit=5&limit=500` is ambiguous, and refusing it beats guessing.
        var seen: Set<Substring> = []
        for (key, _) in query where !seen.insert(key).inserted {
            throw WorkflowError(.invalidRequest, "query parameter '\(key)' is given more than once")
        }
        return query
    }

    func pageSize(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return configuration.defaultPageSize }
        guard let n = Int(text), (1...configuration.maxPageSize).contains(n) else {
            throw WorkflowError(.invalidRequest, "limit must be an integer from 1 to \(configuration.maxPageSize)")
        }
        return n
    }

    /// For commands that take no input: the body must be empty or an empty JSON object.
    func noInput(_ request: Request) async throws {
        let data = try await body(request)
        guard !Self.isBlank(data) else { return }
        guard let value = try? JSONValue.parse(data), value.objectValue?.isEmpty == true else {
            throw WorkflowError(.invalidRequest, "this command takes no input: send no body, or {}")
        }
    }

    static func isBlank(_ data: Data) -> Bool { data.allSatisfy { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 } }

    /// The request's body, up to `maxBodyBytes`, arriving within `requestTimeout`.
    func body(_ request: Request) async throws -> Data {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw WorkflowError(.payloadTooLarge, "the request body is larger than \(configuration.maxBodyBytes) bytes")
        }
        let request = request
        let limit = configuration.maxBodyBytes
        let timeout = configuration.requestTimeout
        do {
            // A client that trickles its body must not hold a connection and a task for ever.
            return try await withThrowingTaskGroup(of: Data?.self) { group in
                group.addTask {
                    var request = request
                    return Data(try await request.collectBody(upTo: limit).readableBytesView)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let data = try await group.next() ?? nil else {
                    throw WorkflowError(.requestTimeout, "the request body did not arrive within \(timeout)")
                }
                return data
            }
        } catch is NIOTooManyBytesError {
            throw WorkflowError(.payloadTooLarge, "the request body is larger than \(configuration.maxBodyBytes) bytes")
        }
    }

    /// The format a body is in, from its Content-Type: JSON (`application/json` or any `+json` type), and for
    /// definitions YAML too. Anything else is refused rather than guessed at (a form or an XML body is not JSON).
    func mediaType(_ request: Request, yamlAllowed: Bool) throws -> WorkflowDocument.Format {
        let header = request.headers[.contentType] ?? ""
        let type = header.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        if type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json")) { return .json }
        if yamlAllowed, ["application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"].contains(type) { return .yaml }
        let accepted = yamlAllowed ? "application/json or application/yaml" : "application/json"
        throw WorkflowError(
            .unsupportedMediaType,
            header.isEmpty
                ? "the request body needs a Content-Type: \(accepted) (curl: -H 'Content-Type: application/json')"
                : "Content-Type '\(header.prefix(100))' is not accepted here; send \(accepted)"
        )
    }

    /// The body as a JSON object (empty allowed when `allowEmpty`).
    func jsonObject(_ request: Request, allowEmpty: Bool) async throws -> [String: JSONValue] {
        let data = try await body(request)
        if Self.isBlank(data) {
            if allowEmpty { return [:] }
            throw WorkflowError(.malformedBody, "the request needs a JSON body")
        }
        _ = try mediaType(request, yamlAllowed: false)
        let value: JSONValue
        do {
            value = try WorkflowDocument.decode(data, format: .json)
        } catch {
            throw WorkflowError(.malformedBody, error.message)
        }
        guard case .object(let fields) = value else {
            let issue = ValidationIssue(pointer: .root, message: "must be an object, got \(value.typeName)")
            throw WorkflowError(.invalidRequest, "the body must be a JSON object", issues: [issue])
        }
        return fields
    }

    /// A body of `{"comment"?}` (at most 2,000 bytes) and the `extra` fields, which `check` validates; every problem is
    /// reported at once, with its pointer.
    func commentedBody(
        _ request: Request,
        allowEmpty: Bool = true,
        extra: Set<String> = [],
        check: ([String: JSONValue], inout [ValidationIssue]) -> Void = { _, _ in }
    ) async throws -> (comment: String?, fields: [String: JSONValue]) {
        let fields = try await jsonObject(request, allowEmpty: allowEmpty)
        var issues: [ValidationIssue] = []
        for key in fields.keys.sorted() where key != "comment" && !extra.contains(key) {
            issues.append(ValidationIssue(pointer: JSONPointer.root.appending(key), message: "unknown field '\(key.prefix(50))'"))
        }
        check(fields, &issues)
        var comment: String?
        if let value = fields["comment"], !value.isNull {
            if let text = value.stringValue, text.utf8.count <= 2000 {
                comment = text
            } else {
                issues.append(ValidationIssue(pointer: JSONPointer.root.appending("comment"), message: "must be a string of at most 2000 bytes"))
            }
        }
        guard issues.isEmpty else { throw WorkflowError(.invalidRequest, "the request is invalid", issues: issues) }
        return (comment, fields)
    }
}

extension APIRequestContext {
    /// The `:id` of a workflow route: a definition id, or a name (URL-encoded: names may hold spaces and other
    /// printable characters), percent-decoded here because the router matches the raw path.
    func workflowReference() throws -> String {
        let raw = try parameters.require("id")
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw WorkflowError(.invalidRequest, "the workflow in the path is not valid percent-encoding")
        }
        return decoded
    }
}
