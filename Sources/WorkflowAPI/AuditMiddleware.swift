import Foundation
import HTTPTypes
import Hummingbird
import Logging
import WorkflowEngine
import WorkflowIdentity
import WorkflowPrimitive
import WorkflowStore

/// Appends entries that record no change (refusals, failed authentications, reads of the log) on their own. A change
/// is audited in its own transaction by the code that makes it; these are best effort: when the database cannot take
/// them, the refusal still stands and the log line says what was lost.
struct AuditWriter: Sendable {
    let store: any AuditStore

    func append(_ records: [AuditRecord], logger: Logger) async {
        do {
            try await store.auditAppend(records)
        } catch {
            logger.error(
                "audit entry lost",
                metadata: ["action": .string(records.first?.action ?? ""), "error": .string("\(error)")]
            )
        }
    }
}

/// Takes the caller's `X-Request-ID` (up to 128 letters, digits, `.`, `_`, `-`) or makes one, and returns it on every
/// answer, errors included.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    static var header: HTTPField.Name { HTTPField.Name("X-Request-ID")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.requestID = Self.valid(request.headers[Self.header]) ?? RecordID.make(now: Date()).lowercased()
        context.logger[metadataKey: LogKey.requestID] = .string(context.requestID)
        var response = try await next(request, context)
        response.headers[Self.header] = context.requestID
        return response
    }

    static func valid(_ id: String?) -> String? {
        guard let id, (1...128).contains(id.utf8.count),
            id.utf8.allSatisfy({
                $0 == 0x2D || $0 == 0x2E || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)
            })
        else { return nil }
        return id
    }
}

/// Audits every refused request of an authenticated caller: a mutating request answered with an error (a missing
/// role, a self-approval, starting a draft, invalid input), and any request refused for want of permission. What
/// succeeds is audited by the handler, in the transaction of its change.
struct AuditMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext
    let audit: AuditWriter
    let clock: @Sendable () -> Date

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            if response.status.code >= 400 { await refused(request, context, status: response.status, code: nil) }
            return response
        } catch {
            let code = (error as? WorkflowError)?.code
            let status: HTTPResponse.Status =
                if let code { ProblemMiddleware<Context>.status(for: code) } else if let error = error as? any HTTPResponseError { error.status } else
                {
                    .internalServerError
                }
            await refused(request, context, status: status, code: code)
            throw error
        }
    }

    func refused(_ request: Request, _ context: Context, status: HTTPResponse.Status, code: WorkflowError.Code?) async {
        guard let principal = context.principal else { return }
        let mutating = request.method != .get && request.method != .head && request.method != .options
        let denied = status == .forbidden || status == .unauthorized
        guard mutating || denied else { return }
        var details: [String: JSONValue] = [
            "method": .string(request.method.rawValue), "route": .string(context.endpointPath ?? request.uri.path),
            "status": .number(Double(status.code)),
        ]
        details["code"] = code.map { .string($0.rawValue) }
        let record = AuditRecord(
            tenantID: principal.tenantID,
            at: clock(),
            context: context.audit,
            action: "request.refused",
            target: String(request.uri.path.prefix(512)),
            outcome: denied ? .denied : .failed,
            details: .object(details)
        )
        await audit.append([record], logger: context.logger)
    }
}
