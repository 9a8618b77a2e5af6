import Foundation
import Hummingbird
import Logging
import NIOCore
import WorkflowPrimitive
import WorkflowWire

/// Renders every error as RFC 9457 `application/problem+json` with a stable `code`.
///
/// Messages of unexpected errors are logged, never sent: they may carry SQL or payloads.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as WorkflowError {
            if Self.status(for: error.code) == .internalServerError {
                // Internal errors may name tables, definitions or payloads: the log gets the detail, the client a pointer.
                context.logger.error("request failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
                return Self.problem(WorkflowError(error.code, "the server failed to handle the request; see its log"))
            }
            return Self.problem(error)
        } catch is NIOTooManyBytesError {
            return Self.problem(WorkflowError(.payloadTooLarge, "the request body is larger than the server accepts"))
        } catch let error as HTTPError {
            switch error.status {
            case .notFound: return Self.problem(WorkflowError(.notFound, "no such resource: \(request.uri.path)"))
            case .methodNotAllowed:
                return Self.problem(WorkflowError(.notFound, "\(request.method) is not allowed on \(request.uri.path)"), status: .methodNotAllowed)
            case .contentTooLarge: return Self.problem(WorkflowError(.payloadTooLarge, "the request body is larger than the server accepts"))
            default: return Self.problem(WorkflowError(.invalidRequest, error.body ?? error.status.reasonPhrase), status: error.status)
            }
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return Self.problem(WorkflowError(.internalError, "the server failed to handle the request; see its log"))
        }
    }

    static func status(for code: WorkflowError.Code) -> HTTPResponse.Status {
        switch code {
        case .invalidDefinition, .invalidInput, .invalidRequest, .idempotencyKeyReused, .definitionTooLarge: .unprocessableContent
        case .malformedBody: .badRequest
        case .payloadTooLarge, .inputTooLarge: .contentTooLarge
        case .unsupportedMediaType: .unsupportedMediaType
        case .requestTimeout: .requestTimeout
        case .workflowNotFound, .runNotFound, .notFound, .secretNotFound, .scheduleNotFound: .notFound
        case .versionConflict, .runNotCancellable, .runFinished, .runNotRetryable, .workflowRetired, .definitionInUse: .conflict
        case .workflowNotActive, .lifecycleConflict, .alreadyDecided, .approvalNotPending, .masterKeyMissing: .conflict
        case .scheduleExists, .scheduleConflict, .webhookExists, .quotaExceeded: .conflict
        case .selfApproval: .forbidden
        case .tooManySignals: .tooManyRequests
        case .unavailable: .serviceUnavailable
        case .unauthenticated: .unauthorized
        case .forbidden: .forbidden
        case .tenantNotFound: .notFound
        case .tenantExists: .conflict
        case .rateLimited, .lockedOut: .tooManyRequests
        default: .internalServerError
        }
    }

    static func problem(_ error: WorkflowError, status: HTTPResponse.Status? = nil) -> Response {
        let status = status ?? Self.status(for: error.code)
        let problem = Problem(error, status: status.code, title: status.reasonPhrase)
        // Encoding these plain values cannot fail; should it ever, the status line still says what happened.
        let body = (try? WireCoding.encode(problem)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if error.code == .unauthenticated { headers[.wwwAuthenticate] = #"Bearer realm="uwf""# }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
